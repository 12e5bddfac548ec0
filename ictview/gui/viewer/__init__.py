"""Slice views over the Qt-free MPR model (ictview.core.mpr, ictview.core.measure):
PlaneView (one plane), MprViewer (the axial / MPR layouts), the DICOM tag browser."""
