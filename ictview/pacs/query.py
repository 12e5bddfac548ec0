"""Studies with their series, the same answer over DICOMweb and DIMSE."""

from __future__ import annotations

from ictview.pacs.records import PacsClient, StudyInfo


def query_studies(client: PacsClient, patient_id: str = "", study_date: str = "",
                  modality: str = "") -> list[StudyInfo]:
    studies = client.find_studies(patient_id=patient_id, study_date=study_date,
                                  modality=modality)
    for st in studies:
        st.series = sorted(client.find_series(st.study_uid),
                           key=lambda s: (s.number is None, s.number or 0, s.series_uid))
    return sorted(studies, key=lambda s: (s.study_date, s.patient_id, s.study_uid))
