"""DRN-D-38's residual blocks per stage, as plain data: the config holds it and is checked
without importing torch (the network itself is ``training.models.drn``)."""

DRN_D_38_BLOCKS: tuple[int, ...] = (1, 1, 3, 4, 6, 3, 1, 1)
