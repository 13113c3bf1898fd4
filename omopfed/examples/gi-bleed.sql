-- Persons with a gastrointestinal haemorrhage diagnosis (SNOMED 192671), one row per diagnosis.
-- The trusts count distinct persons, so repeated diagnoses do not inflate anything.
SELECT co.person_id, co.condition_start_date
FROM condition_occurrence co
WHERE co.condition_concept_id = 192671
