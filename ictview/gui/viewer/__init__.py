"""Slice views over the Qt-free MPR model (ictview.core.mpr, ictview.core.measure):
SliceView (CT + label overlay), PlaneView (one plane), MprViewer (the axial / MPR layouts),
the cursor status bar, the exam cache and the DICOM tag browser."""
