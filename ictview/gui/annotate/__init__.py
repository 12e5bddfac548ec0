"""Annotation: the tool panel, binding an AnnotationModel (ictview.core.annotation) to the
views of a painting window, model-assisted labeling and training with my labels."""
