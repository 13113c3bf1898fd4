-- The six features of Flower's federated-analytics example, as a cohort over OMOP CDM.
--
-- Flower's example keeps one row per person in a site table
--   person_measurements(person_id, age, bmi, systolic_bp, diastolic_bp, ldl_cholesterol, hba1c).
-- In OMOP the five measurements are rows of omop.measurement (LOINC concepts below) and age comes from
-- omop.person. This query pivots them back into one row per person: for each feature the person's
-- LATEST value (latest measurement_date, ties broken by the highest measurement_id), null when the
-- person was never measured. Persons with none of the five measurements are left out.
--
--   bmi              3038553  Body mass index (BMI) [Ratio]                      kg/m2
--   systolic_bp      3004249  Systolic blood pressure                            mmHg
--   diastolic_bp     3012888  Diastolic blood pressure                           mmHg
--   ldl_cholesterol  3009966  Cholesterol in LDL [Mass/volume] in Serum/Plasma   mg/dL
--   hba1c            3004410  Hemoglobin A1c/Hemoglobin.total in Blood           %
--   age              current year - year_of_birth                                years
--
-- Use it with numeric statistics, for example:
--   omopfed hub submit --sql-file examples/flower-six-features.sql \
--       --numeric age,bmi,systolic_bp,diastolic_bp,ldl_cholesterol,hba1c --histogram bmi=15:45:10
WITH ranked AS (
    SELECT
        m.person_id,
        m.measurement_concept_id,
        m.value_as_number,
        ROW_NUMBER() OVER (
            PARTITION BY m.person_id, m.measurement_concept_id
            ORDER BY m.measurement_date DESC, m.measurement_id DESC
        ) AS recency
    FROM omop.measurement AS m
    WHERE m.measurement_concept_id IN (3038553, 3004249, 3012888, 3009966, 3004410)
      AND m.value_as_number IS NOT NULL
)
SELECT
    p.person_id,
    EXTRACT(YEAR FROM CURRENT_DATE) - p.year_of_birth AS age,
    MAX(r.value_as_number) FILTER (WHERE r.measurement_concept_id = 3038553) AS bmi,
    MAX(r.value_as_number) FILTER (WHERE r.measurement_concept_id = 3004249) AS systolic_bp,
    MAX(r.value_as_number) FILTER (WHERE r.measurement_concept_id = 3012888) AS diastolic_bp,
    MAX(r.value_as_number) FILTER (WHERE r.measurement_concept_id = 3009966) AS ldl_cholesterol,
    MAX(r.value_as_number) FILTER (WHERE r.measurement_concept_id = 3004410) AS hba1c
FROM ranked AS r
JOIN omop.person AS p ON p.person_id = r.person_id
WHERE r.recency = 1
GROUP BY p.person_id, p.year_of_birth
