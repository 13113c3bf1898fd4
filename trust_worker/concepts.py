"""Well-known OMOP concept ids used by the synthetic data, the loaders, the tests and example queries.

Standard OHDSI ids are used where the project relies on them (genders, visits, the FLIP imaging modalities,
the LOINC measurements, the Eunomia GiBleed study concepts). Concepts with no public standard id that we
know of (the DICOM attributes Slice Thickness and Manufacturer, anatomic sites) get ids in OMOP's local range
(>= 2,000,000,000, reserved for site-specific concepts) under our own vocabulary ``OMOPFED``, so they can
never be confused with a real vocabulary entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

NO_MATCHING_CONCEPT = 0

# Genders
MALE = 8507
FEMALE = 8532
GENDERS = (MALE, FEMALE)

# Visits
INPATIENT_VISIT = 9201
OUTPATIENT_VISIT = 9202
EMERGENCY_ROOM_VISIT = 9203
VISITS = (INPATIENT_VISIT, OUTPATIENT_VISIT, EMERGENCY_ROOM_VISIT)

# Provenance ("type") of every synthetic record
EHR_TYPE = 32817

# Imaging modalities (FLIP / MI-CDM)
CT = 4013636
MR = 4013634
XR = 4013632
MODALITIES = (CT, MR, XR)

# Procedures
CT_SPLEEN = 4002001

# Measurements (LOINC)
BMI = 3038553
SYSTOLIC_BP = 3004249
DIASTOLIC_BP = 3012888
LDL_CHOLESTEROL = 3009966
HBA1C = 3004410
MEASUREMENTS = (BMI, SYSTOLIC_BP, DIASTOLIC_BP, LDL_CHOLESTEROL, HBA1C)

# Units (UCUM)
UNIT_KG_PER_M2 = 9531
UNIT_MMHG = 8876
UNIT_MG_PER_DL = 8840
UNIT_PERCENT = 8554
UNIT_MILLIMETER = 8588

# Image features: DICOM attributes carried through image_feature -> measurement (local ids)
SLICE_THICKNESS = 2_000_000_001
MANUFACTURER = 2_000_000_002
# image_feature.image_feature_event_field_concept_id meaning "the event is a measurement row"
MEASUREMENT_EVENT_FIELD = 1147330

# Anatomic sites (local ids)
SITE_SPLEEN = 2_000_000_003
SITE_ABDOMEN = 2_000_000_004
SITE_CHEST = 2_000_000_005
SITE_HEAD = 2_000_000_006

# Conditions (SNOMED)
GI_BLEED = 192671
TYPE_2_DIABETES = 201826
HYPERTENSION = 316866
OSTEOARTHRITIS = 80180
CONDITIONS = (GI_BLEED, TYPE_2_DIABETES, HYPERTENSION, OSTEOARTHRITIS)

# Drug ingredients (RxNorm)
CELECOXIB = 1118084
DICLOFENAC = 1124300
IBUPROFEN = 1177480
ACETAMINOPHEN = 1125315
DRUG_INGREDIENTS = (CELECOXIB, DICLOFENAC, IBUPROFEN, ACETAMINOPHEN)

# A synthetic non-imaging procedure (local id)
CONSULTATION = 2_000_000_010

# Metadata
CDM_V54 = 756265


@dataclass(frozen=True)
class Concept:
    """One row of omop.concept."""

    concept_id: int
    concept_name: str
    domain_id: str
    vocabulary_id: str
    concept_class_id: str
    standard_concept: str | None
    concept_code: str

    def row(self) -> tuple[object, ...]:
        """The omop.concept row, valid from 1970 to 2099 like the OHDSI vocabulary's open-ended entries."""
        return (
            self.concept_id,
            self.concept_name,
            self.domain_id,
            self.vocabulary_id,
            self.concept_class_id,
            self.standard_concept,
            self.concept_code,
            dt.date(1970, 1, 1),
            dt.date(2099, 12, 31),
            None,
        )


LOCAL_VOCABULARY = "OMOPFED"

# Every concept the synthetic generator writes, and the gender concepts the Eunomia loader adds when missing.
CATALOGUE: tuple[Concept, ...] = (
    Concept(
        NO_MATCHING_CONCEPT,
        "No matching concept",
        "Metadata",
        "None",
        "Undefined",
        None,
        "No matching concept",
    ),
    Concept(MALE, "MALE", "Gender", "Gender", "Gender", "S", "M"),
    Concept(FEMALE, "FEMALE", "Gender", "Gender", "Gender", "S", "F"),
    Concept(INPATIENT_VISIT, "Inpatient Visit", "Visit", "Visit", "Visit", "S", "IP"),
    Concept(OUTPATIENT_VISIT, "Outpatient Visit", "Visit", "Visit", "Visit", "S", "OP"),
    Concept(EMERGENCY_ROOM_VISIT, "Emergency Room Visit", "Visit", "Visit", "Visit", "S", "ER"),
    Concept(EHR_TYPE, "EHR", "Type Concept", "Type Concept", "Type Concept", "S", "OMOP4976890"),
    Concept(CT, "Computed Tomography", "Observation", "DICOM", "Modality", "S", "CT"),
    Concept(MR, "Magnetic Resonance", "Observation", "DICOM", "Modality", "S", "MR"),
    Concept(XR, "X-Ray", "Observation", "DICOM", "Modality", "S", "XR"),
    Concept(CT_SPLEEN, "CT Spleen", "Procedure", "SNOMED", "Procedure", "S", "CT-SPLEEN"),
    Concept(
        CONSULTATION, "Synthetic consultation", "Procedure", LOCAL_VOCABULARY, "Procedure", "S", "CONSULT"
    ),
    Concept(
        BMI, "Body mass index (BMI) [Ratio]", "Measurement", "LOINC", "Clinical Observation", "S", "39156-5"
    ),
    Concept(
        SYSTOLIC_BP, "Systolic blood pressure", "Measurement", "LOINC", "Clinical Observation", "S", "8480-6"
    ),
    Concept(
        DIASTOLIC_BP,
        "Diastolic blood pressure",
        "Measurement",
        "LOINC",
        "Clinical Observation",
        "S",
        "8462-4",
    ),
    Concept(
        LDL_CHOLESTEROL,
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        "Lab Test",
        "S",
        "LDL-C",
    ),
    Concept(
        HBA1C, "Hemoglobin A1c/Hemoglobin.total in Blood", "Measurement", "LOINC", "Lab Test", "S", "4548-4"
    ),
    Concept(UNIT_KG_PER_M2, "kilogram per square meter", "Unit", "UCUM", "Unit", "S", "kg/m2"),
    Concept(UNIT_MMHG, "millimeter mercury column", "Unit", "UCUM", "Unit", "S", "mm[Hg]"),
    Concept(UNIT_MG_PER_DL, "milligram per deciliter", "Unit", "UCUM", "Unit", "S", "mg/dL"),
    Concept(UNIT_PERCENT, "percent", "Unit", "UCUM", "Unit", "S", "%"),
    Concept(UNIT_MILLIMETER, "millimeter", "Unit", "UCUM", "Unit", "S", "mm"),
    Concept(
        SLICE_THICKNESS,
        "Slice Thickness",
        "Measurement",
        LOCAL_VOCABULARY,
        "DICOM Attribute",
        "S",
        "(0018,0050)",
    ),
    Concept(
        MANUFACTURER, "Manufacturer", "Measurement", LOCAL_VOCABULARY, "DICOM Attribute", "S", "(0008,0070)"
    ),
    Concept(
        MEASUREMENT_EVENT_FIELD, "measurement.measurement_id", "Metadata", "CDM", "Field", "S", "CDM1147330"
    ),
    Concept(SITE_SPLEEN, "Spleen", "Spec Anatomic Site", LOCAL_VOCABULARY, "Body Structure", "S", "SPLEEN"),
    Concept(
        SITE_ABDOMEN, "Abdomen", "Spec Anatomic Site", LOCAL_VOCABULARY, "Body Structure", "S", "ABDOMEN"
    ),
    Concept(SITE_CHEST, "Chest", "Spec Anatomic Site", LOCAL_VOCABULARY, "Body Structure", "S", "CHEST"),
    Concept(SITE_HEAD, "Head", "Spec Anatomic Site", LOCAL_VOCABULARY, "Body Structure", "S", "HEAD"),
    Concept(
        GI_BLEED, "Gastrointestinal hemorrhage", "Condition", "SNOMED", "Clinical Finding", "S", "74474003"
    ),
    Concept(
        TYPE_2_DIABETES,
        "Type 2 diabetes mellitus",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "S",
        "44054006",
    ),
    Concept(
        HYPERTENSION, "Hypertensive disorder", "Condition", "SNOMED", "Clinical Finding", "S", "38341003"
    ),
    Concept(OSTEOARTHRITIS, "Osteoarthritis", "Condition", "SNOMED", "Clinical Finding", "S", "396275006"),
    Concept(CELECOXIB, "celecoxib", "Drug", "RxNorm", "Ingredient", "S", "140587"),
    Concept(DICLOFENAC, "diclofenac", "Drug", "RxNorm", "Ingredient", "S", "3355"),
    Concept(IBUPROFEN, "ibuprofen", "Drug", "RxNorm", "Ingredient", "S", "5640"),
    Concept(ACETAMINOPHEN, "acetaminophen", "Drug", "RxNorm", "Ingredient", "S", "161"),
    Concept(CDM_V54, "OMOP CDM Version 5.4.0", "Metadata", "CDM", "CDM", "S", "CDM v5.4.0"),
)

BY_ID: dict[int, Concept] = {c.concept_id: c for c in CATALOGUE}

# Vocabulary / domain / concept-class rows the catalogue refers to (their own concept ids left 0).
VOCABULARIES: tuple[tuple[str, str], ...] = tuple(
    sorted({(c.vocabulary_id, f"{c.vocabulary_id} (subset used by omop-federation)") for c in CATALOGUE})
)
DOMAINS: tuple[str, ...] = tuple(sorted({c.domain_id for c in CATALOGUE}))
CONCEPT_CLASSES: tuple[str, ...] = tuple(sorted({c.concept_class_id for c in CATALOGUE}))
