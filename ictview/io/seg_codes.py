"""Coded concepts of the DICOM SEG segments: one SNOMED CT concept per hemorrhage subtype.

Category: SCT 49755003 "Morphologically Abnormal Structure" (DICOM CID 7150). Segmented
property type: the subtype's own SNOMED CT disorder concept where one could be corroborated,
so a PACS or a terminology-aware viewer (Slicer, OHIF) tells the five segments apart by code,
not only by SegmentLabel. DICOM's segmentation context groups (CID 7151 "Segmentation
Property Type", CID 7159 "Lesion Segmentation Type") list only the generic SCT 50960005
"Hemorrhage" (checked in pydicom's PS3.16 concept table, `pydicom.sr._concepts_dict`); the
subtypes are extensions beyond the context group, which both groups allow (extensible).

Sources (SNOMED CT International, via public value sets seen in several independent FHIR
implementation guides and code lists; verify against the SNOMED CT browser before relying
on them clinically):
    SAH 21454007  Subarachnoid hemorrhage   (VSAC "Hemorrhagic Stroke" value set; FHIR IGs)
    IPH 274100004 Cerebral hemorrhage       (several FHIR IGs: "intracerebral hemorrhage")
    SDH 35486000  Subdural hemorrhage       (a FHIR HL7 export code list)
    IVH 274110009 Intraventricular hemorrhage (a FHIR stroke registry profile)
    EDH: no code found that two sources agreed on, so EDH keeps the generic SCT 50960005
         "Hemorrhage" (CID 7151) and is told apart by SegmentLabel "EDH" and its
         description "Epidural".
Reading back (`read_dicom_seg`) maps segments by SegmentLabel, so files written before
this change read the same.
"""

from __future__ import annotations

SEG_CATEGORY = ("49755003", "SCT", "Morphologically Abnormal Structure")
GENERIC_HEMORRHAGE = ("50960005", "SCT", "Hemorrhage")

SEG_TYPE_BY_CODE: dict[str, tuple[str, str, str]] = {
    "EDH": GENERIC_HEMORRHAGE,
    "SDH": ("35486000", "SCT", "Subdural hemorrhage"),
    "SAH": ("21454007", "SCT", "Subarachnoid hemorrhage"),
    "IPH": ("274100004", "SCT", "Cerebral hemorrhage"),
    "IVH": ("274110009", "SCT", "Intraventricular hemorrhage"),
}


def segment_type(code: str) -> tuple[str, str, str]:
    return SEG_TYPE_BY_CODE.get(code, GENERIC_HEMORRHAGE)
