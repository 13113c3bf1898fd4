-- FLIP's worked example: persons with a CT Spleen procedure (4002001) and their imaging studies.
WITH gender_concept AS (
  SELECT concept_id, concept_name FROM omop.concept WHERE concept_name IN ('Male', 'Female')
),
procedure_concept AS (
  SELECT concept_id, concept_name FROM omop.concept
  WHERE domain_id = 'Procedure'
    AND concept_class_id IN ('Procedure', 'Clinical Observation')
    AND standard_concept = 'S'
)
SELECT
  p.person_id,
  p.person_source_value AS "Patient ID",
  gender_concept.concept_name AS "Gender",
  io.accession_id,
  io.image_occurrence_date AS "Image date"
FROM omop.person p
LEFT JOIN omop.visit_occurrence v ON v.person_id = p.person_id
LEFT JOIN omop.procedure_occurrence pr ON pr.visit_occurrence_id = v.visit_occurrence_id
LEFT JOIN omop.image_occurrence io ON io.procedure_occurrence_id = pr.procedure_occurrence_id
LEFT JOIN gender_concept ON p.gender_concept_id = gender_concept.concept_id
LEFT JOIN procedure_concept ON pr.procedure_concept_id = procedure_concept.concept_id
WHERE procedure_concept.concept_id = 4002001
