"""The blinded test-retest session window and its widgets (ictview.study.retest_session)."""
