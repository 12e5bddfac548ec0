"""The main window (exam list | viewer | tool panel, menus) and what only it has: the exam
list, the windows of the training / review panels, the check of opened files."""
