"""PACS client: query, retrieve and store with a DICOM server over DICOMweb or DIMSE.

Qt-free. `target` parses the server address, `dicomweb` and `dimse` speak the two
protocols behind one interface (`records.PacsClient`), `pull` retrieves into the
workspace's staging folder and imports through `ictview.io.importers`, `push` stores
the DICOM SEG written by `ictview.io.export`, `deid` de-identifies on the way out.
"""
