"""Looking at model output: prediction review, comparison of two runs, the ranker
(threshold inspection), the metrics dashboard, and the prediction layer they draw."""
