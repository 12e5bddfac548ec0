"""Annotation: the tool panel, binding an AnnotationModel (ictview.core.annotation) to the
views of a painting window, model-assisted labelling and training with my labels."""
