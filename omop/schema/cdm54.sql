-- OMOP CDM 5.4 (subset) plus the OHDSI Medical Imaging extension, for PostgreSQL, in schema "omop".
--
-- Written from the public CDM 5.4 table specification. Deliberately without foreign keys: trusts bulk-load
-- vocabularies and clinical tables in any order, and a reader role never writes, so referential checks
-- would only slow loading down. Every statement is idempotent (IF NOT EXISTS) so init-db can run twice.
--
-- Format rules (omop.schema parses this file to know the expected columns of each table):
--   * one "CREATE TABLE IF NOT EXISTS omop.<name> (" line per table, one column per line,
--     "<column> <type> [NOT NULL]," with types spelled bigint / integer / numeric / text / date /
--     timestamp / varchar(N), then an optional "PRIMARY KEY (...)" line and ");".
--   * indexes are one "CREATE INDEX IF NOT EXISTS <name> ON omop.<table> (...);" line each.

CREATE SCHEMA IF NOT EXISTS omop;

-- ---------------------------------------------------------------------------------------------------------
-- Clinical data
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS omop.person (
    person_id bigint NOT NULL,
    gender_concept_id integer NOT NULL,
    year_of_birth integer NOT NULL,
    month_of_birth integer,
    day_of_birth integer,
    birth_datetime timestamp,
    race_concept_id integer NOT NULL,
    ethnicity_concept_id integer NOT NULL,
    location_id bigint,
    provider_id bigint,
    care_site_id bigint,
    person_source_value varchar(50),
    gender_source_value varchar(50),
    gender_source_concept_id integer,
    race_source_value varchar(50),
    race_source_concept_id integer,
    ethnicity_source_value varchar(50),
    ethnicity_source_concept_id integer,
    PRIMARY KEY (person_id)
);

CREATE TABLE IF NOT EXISTS omop.observation_period (
    observation_period_id bigint NOT NULL,
    person_id bigint NOT NULL,
    observation_period_start_date date NOT NULL,
    observation_period_end_date date NOT NULL,
    period_type_concept_id integer NOT NULL,
    PRIMARY KEY (observation_period_id)
);

CREATE TABLE IF NOT EXISTS omop.visit_occurrence (
    visit_occurrence_id bigint NOT NULL,
    person_id bigint NOT NULL,
    visit_concept_id integer NOT NULL,
    visit_start_date date NOT NULL,
    visit_start_datetime timestamp,
    visit_end_date date NOT NULL,
    visit_end_datetime timestamp,
    visit_type_concept_id integer NOT NULL,
    provider_id bigint,
    care_site_id bigint,
    visit_source_value varchar(50),
    visit_source_concept_id integer,
    admitted_from_concept_id integer,
    admitted_from_source_value varchar(50),
    discharged_to_concept_id integer,
    discharged_to_source_value varchar(50),
    preceding_visit_occurrence_id bigint,
    PRIMARY KEY (visit_occurrence_id)
);

CREATE TABLE IF NOT EXISTS omop.visit_detail (
    visit_detail_id bigint NOT NULL,
    person_id bigint NOT NULL,
    visit_detail_concept_id integer NOT NULL,
    visit_detail_start_date date NOT NULL,
    visit_detail_start_datetime timestamp,
    visit_detail_end_date date NOT NULL,
    visit_detail_end_datetime timestamp,
    visit_detail_type_concept_id integer NOT NULL,
    provider_id bigint,
    care_site_id bigint,
    visit_detail_source_value varchar(50),
    visit_detail_source_concept_id integer,
    admitted_from_concept_id integer,
    admitted_from_source_value varchar(50),
    discharged_to_source_value varchar(50),
    discharged_to_concept_id integer,
    preceding_visit_detail_id bigint,
    parent_visit_detail_id bigint,
    visit_occurrence_id bigint NOT NULL,
    PRIMARY KEY (visit_detail_id)
);

CREATE TABLE IF NOT EXISTS omop.condition_occurrence (
    condition_occurrence_id bigint NOT NULL,
    person_id bigint NOT NULL,
    condition_concept_id integer NOT NULL,
    condition_start_date date NOT NULL,
    condition_start_datetime timestamp,
    condition_end_date date,
    condition_end_datetime timestamp,
    condition_type_concept_id integer NOT NULL,
    condition_status_concept_id integer,
    stop_reason varchar(20),
    provider_id bigint,
    visit_occurrence_id bigint,
    visit_detail_id bigint,
    condition_source_value varchar(50),
    condition_source_concept_id integer,
    condition_status_source_value varchar(50),
    PRIMARY KEY (condition_occurrence_id)
);

CREATE TABLE IF NOT EXISTS omop.drug_exposure (
    drug_exposure_id bigint NOT NULL,
    person_id bigint NOT NULL,
    drug_concept_id integer NOT NULL,
    drug_exposure_start_date date NOT NULL,
    drug_exposure_start_datetime timestamp,
    drug_exposure_end_date date NOT NULL,
    drug_exposure_end_datetime timestamp,
    verbatim_end_date date,
    drug_type_concept_id integer NOT NULL,
    stop_reason varchar(20),
    refills integer,
    quantity numeric,
    days_supply integer,
    sig text,
    route_concept_id integer,
    lot_number varchar(50),
    provider_id bigint,
    visit_occurrence_id bigint,
    visit_detail_id bigint,
    drug_source_value varchar(50),
    drug_source_concept_id integer,
    route_source_value varchar(50),
    dose_unit_source_value varchar(50),
    PRIMARY KEY (drug_exposure_id)
);

CREATE TABLE IF NOT EXISTS omop.procedure_occurrence (
    procedure_occurrence_id bigint NOT NULL,
    person_id bigint NOT NULL,
    procedure_concept_id integer NOT NULL,
    procedure_date date NOT NULL,
    procedure_datetime timestamp,
    procedure_end_date date,
    procedure_end_datetime timestamp,
    procedure_type_concept_id integer NOT NULL,
    modifier_concept_id integer,
    quantity integer,
    provider_id bigint,
    visit_occurrence_id bigint,
    visit_detail_id bigint,
    procedure_source_value varchar(50),
    procedure_source_concept_id integer,
    modifier_source_value varchar(50),
    PRIMARY KEY (procedure_occurrence_id)
);

CREATE TABLE IF NOT EXISTS omop.device_exposure (
    device_exposure_id bigint NOT NULL,
    person_id bigint NOT NULL,
    device_concept_id integer NOT NULL,
    device_exposure_start_date date NOT NULL,
    device_exposure_start_datetime timestamp,
    device_exposure_end_date date,
    device_exposure_end_datetime timestamp,
    device_type_concept_id integer NOT NULL,
    unique_device_id varchar(255),
    production_id varchar(255),
    quantity integer,
    provider_id bigint,
    visit_occurrence_id bigint,
    visit_detail_id bigint,
    device_source_value varchar(50),
    device_source_concept_id integer,
    unit_concept_id integer,
    unit_source_value varchar(50),
    unit_source_concept_id integer,
    PRIMARY KEY (device_exposure_id)
);

CREATE TABLE IF NOT EXISTS omop.measurement (
    measurement_id bigint NOT NULL,
    person_id bigint NOT NULL,
    measurement_concept_id integer NOT NULL,
    measurement_date date NOT NULL,
    measurement_datetime timestamp,
    measurement_time varchar(10),
    measurement_type_concept_id integer NOT NULL,
    operator_concept_id integer,
    value_as_number numeric,
    value_as_concept_id integer,
    unit_concept_id integer,
    range_low numeric,
    range_high numeric,
    provider_id bigint,
    visit_occurrence_id bigint,
    visit_detail_id bigint,
    measurement_source_value varchar(50),
    measurement_source_concept_id integer,
    unit_source_value varchar(50),
    unit_source_concept_id integer,
    value_source_value varchar(50),
    measurement_event_id bigint,
    meas_event_field_concept_id integer,
    PRIMARY KEY (measurement_id)
);

CREATE TABLE IF NOT EXISTS omop.observation (
    observation_id bigint NOT NULL,
    person_id bigint NOT NULL,
    observation_concept_id integer NOT NULL,
    observation_date date NOT NULL,
    observation_datetime timestamp,
    observation_type_concept_id integer NOT NULL,
    value_as_number numeric,
    value_as_string varchar(60),
    value_as_concept_id integer,
    qualifier_concept_id integer,
    unit_concept_id integer,
    provider_id bigint,
    visit_occurrence_id bigint,
    visit_detail_id bigint,
    observation_source_value varchar(50),
    observation_source_concept_id integer,
    unit_source_value varchar(50),
    qualifier_source_value varchar(50),
    value_source_value varchar(50),
    observation_event_id bigint,
    obs_event_field_concept_id integer,
    PRIMARY KEY (observation_id)
);

CREATE TABLE IF NOT EXISTS omop.death (
    person_id bigint NOT NULL,
    death_date date NOT NULL,
    death_datetime timestamp,
    death_type_concept_id integer,
    cause_concept_id integer,
    cause_source_value varchar(50),
    cause_source_concept_id integer,
    PRIMARY KEY (person_id)
);

-- ---------------------------------------------------------------------------------------------------------
-- Derived eras
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS omop.condition_era (
    condition_era_id bigint NOT NULL,
    person_id bigint NOT NULL,
    condition_concept_id integer NOT NULL,
    condition_era_start_date date NOT NULL,
    condition_era_end_date date NOT NULL,
    condition_occurrence_count integer,
    PRIMARY KEY (condition_era_id)
);

CREATE TABLE IF NOT EXISTS omop.drug_era (
    drug_era_id bigint NOT NULL,
    person_id bigint NOT NULL,
    drug_concept_id integer NOT NULL,
    drug_era_start_date date NOT NULL,
    drug_era_end_date date NOT NULL,
    drug_exposure_count integer,
    gap_days integer,
    PRIMARY KEY (drug_era_id)
);

-- ---------------------------------------------------------------------------------------------------------
-- Medical Imaging extension (MI-CDM), with FLIP's accession_id on image_occurrence
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS omop.image_occurrence (
    image_occurrence_id bigint NOT NULL,
    person_id bigint NOT NULL,
    procedure_occurrence_id bigint,
    visit_occurrence_id bigint,
    modality_concept_id integer NOT NULL,
    anatomic_site_concept_id integer,
    accession_id varchar(50),
    image_occurrence_date date NOT NULL,
    image_study_uid varchar(100),
    image_series_uid varchar(100),
    wadors_uri varchar(255),
    local_path varchar(255),
    PRIMARY KEY (image_occurrence_id)
);

CREATE TABLE IF NOT EXISTS omop.image_feature (
    image_feature_id bigint NOT NULL,
    person_id bigint NOT NULL,
    image_occurrence_id bigint NOT NULL,
    image_feature_concept_id integer NOT NULL,
    image_feature_type_concept_id integer NOT NULL,
    image_finding_concept_id integer,
    image_finding_id bigint,
    anatomic_site_concept_id integer,
    alg_system varchar(255),
    alg_datetime timestamp,
    image_feature_event_field_concept_id integer,
    image_feature_event_id bigint,
    PRIMARY KEY (image_feature_id)
);

-- ---------------------------------------------------------------------------------------------------------
-- Health system (reachable from a person's row only through its key)
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS omop.location (
    location_id bigint NOT NULL,
    address_1 varchar(50),
    address_2 varchar(50),
    city varchar(50),
    state varchar(2),
    zip varchar(9),
    county varchar(20),
    location_source_value varchar(50),
    country_concept_id integer,
    country_source_value varchar(80),
    latitude numeric,
    longitude numeric,
    PRIMARY KEY (location_id)
);

CREATE TABLE IF NOT EXISTS omop.care_site (
    care_site_id bigint NOT NULL,
    care_site_name varchar(255),
    place_of_service_concept_id integer,
    location_id bigint,
    care_site_source_value varchar(50),
    place_of_service_source_value varchar(50),
    PRIMARY KEY (care_site_id)
);

CREATE TABLE IF NOT EXISTS omop.provider (
    provider_id bigint NOT NULL,
    provider_name varchar(255),
    npi varchar(20),
    dea varchar(20),
    specialty_concept_id integer,
    care_site_id bigint,
    year_of_birth integer,
    gender_concept_id integer,
    provider_source_value varchar(50),
    specialty_source_value varchar(50),
    specialty_source_concept_id integer,
    gender_source_value varchar(50),
    gender_source_concept_id integer,
    PRIMARY KEY (provider_id)
);

-- ---------------------------------------------------------------------------------------------------------
-- Metadata
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS omop.cdm_source (
    cdm_source_name varchar(255) NOT NULL,
    cdm_source_abbreviation varchar(25) NOT NULL,
    cdm_holder varchar(255) NOT NULL,
    source_description text,
    source_documentation_reference varchar(255),
    cdm_etl_reference varchar(255),
    source_release_date date NOT NULL,
    cdm_release_date date NOT NULL,
    cdm_version varchar(10),
    cdm_version_concept_id integer NOT NULL,
    vocabulary_version varchar(20) NOT NULL
);

-- ---------------------------------------------------------------------------------------------------------
-- Standardized vocabularies
-- ---------------------------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS omop.concept (
    concept_id integer NOT NULL,
    concept_name varchar(255) NOT NULL,
    domain_id varchar(20) NOT NULL,
    vocabulary_id varchar(20) NOT NULL,
    concept_class_id varchar(20) NOT NULL,
    standard_concept varchar(1),
    concept_code varchar(50) NOT NULL,
    valid_start_date date NOT NULL,
    valid_end_date date NOT NULL,
    invalid_reason varchar(1),
    PRIMARY KEY (concept_id)
);

CREATE TABLE IF NOT EXISTS omop.vocabulary (
    vocabulary_id varchar(20) NOT NULL,
    vocabulary_name varchar(255) NOT NULL,
    vocabulary_reference varchar(255),
    vocabulary_version varchar(255),
    vocabulary_concept_id integer NOT NULL,
    PRIMARY KEY (vocabulary_id)
);

CREATE TABLE IF NOT EXISTS omop.domain (
    domain_id varchar(20) NOT NULL,
    domain_name varchar(255) NOT NULL,
    domain_concept_id integer NOT NULL,
    PRIMARY KEY (domain_id)
);

CREATE TABLE IF NOT EXISTS omop.concept_class (
    concept_class_id varchar(20) NOT NULL,
    concept_class_name varchar(255) NOT NULL,
    concept_class_concept_id integer NOT NULL,
    PRIMARY KEY (concept_class_id)
);

CREATE TABLE IF NOT EXISTS omop.concept_relationship (
    concept_id_1 integer NOT NULL,
    concept_id_2 integer NOT NULL,
    relationship_id varchar(20) NOT NULL,
    valid_start_date date NOT NULL,
    valid_end_date date NOT NULL,
    invalid_reason varchar(1),
    PRIMARY KEY (concept_id_1, concept_id_2, relationship_id)
);

CREATE TABLE IF NOT EXISTS omop.relationship (
    relationship_id varchar(20) NOT NULL,
    relationship_name varchar(255) NOT NULL,
    is_hierarchical varchar(1) NOT NULL,
    defines_ancestry varchar(1) NOT NULL,
    reverse_relationship_id varchar(20) NOT NULL,
    relationship_concept_id integer NOT NULL,
    PRIMARY KEY (relationship_id)
);

CREATE TABLE IF NOT EXISTS omop.concept_synonym (
    concept_id integer NOT NULL,
    concept_synonym_name varchar(1000) NOT NULL,
    language_concept_id integer NOT NULL
);

CREATE TABLE IF NOT EXISTS omop.concept_ancestor (
    ancestor_concept_id integer NOT NULL,
    descendant_concept_id integer NOT NULL,
    min_levels_of_separation integer NOT NULL,
    max_levels_of_separation integer NOT NULL,
    PRIMARY KEY (ancestor_concept_id, descendant_concept_id)
);

-- ---------------------------------------------------------------------------------------------------------
-- Indexes for cohort queries: person, concept and date look-ups. Primary keys above cover the id joins.
-- ---------------------------------------------------------------------------------------------------------

CREATE INDEX IF NOT EXISTS idx_observation_period_person ON omop.observation_period (person_id);
CREATE INDEX IF NOT EXISTS idx_visit_person ON omop.visit_occurrence (person_id);
CREATE INDEX IF NOT EXISTS idx_visit_concept ON omop.visit_occurrence (visit_concept_id);
CREATE INDEX IF NOT EXISTS idx_visit_start_date ON omop.visit_occurrence (visit_start_date);
CREATE INDEX IF NOT EXISTS idx_visit_detail_person ON omop.visit_detail (person_id);
CREATE INDEX IF NOT EXISTS idx_condition_person ON omop.condition_occurrence (person_id);
CREATE INDEX IF NOT EXISTS idx_condition_concept ON omop.condition_occurrence (condition_concept_id);
CREATE INDEX IF NOT EXISTS idx_condition_start_date ON omop.condition_occurrence (condition_start_date);
CREATE INDEX IF NOT EXISTS idx_drug_person ON omop.drug_exposure (person_id);
CREATE INDEX IF NOT EXISTS idx_drug_concept ON omop.drug_exposure (drug_concept_id);
CREATE INDEX IF NOT EXISTS idx_drug_start_date ON omop.drug_exposure (drug_exposure_start_date);
CREATE INDEX IF NOT EXISTS idx_procedure_person ON omop.procedure_occurrence (person_id);
CREATE INDEX IF NOT EXISTS idx_procedure_concept ON omop.procedure_occurrence (procedure_concept_id);
CREATE INDEX IF NOT EXISTS idx_procedure_visit ON omop.procedure_occurrence (visit_occurrence_id);
CREATE INDEX IF NOT EXISTS idx_procedure_date ON omop.procedure_occurrence (procedure_date);
CREATE INDEX IF NOT EXISTS idx_device_person ON omop.device_exposure (person_id);
CREATE INDEX IF NOT EXISTS idx_measurement_person ON omop.measurement (person_id);
CREATE INDEX IF NOT EXISTS idx_measurement_concept ON omop.measurement (measurement_concept_id);
CREATE INDEX IF NOT EXISTS idx_measurement_date ON omop.measurement (measurement_date);
CREATE INDEX IF NOT EXISTS idx_observation_person ON omop.observation (person_id);
CREATE INDEX IF NOT EXISTS idx_observation_concept ON omop.observation (observation_concept_id);
CREATE INDEX IF NOT EXISTS idx_observation_date ON omop.observation (observation_date);
CREATE INDEX IF NOT EXISTS idx_condition_era_person ON omop.condition_era (person_id);
CREATE INDEX IF NOT EXISTS idx_condition_era_concept ON omop.condition_era (condition_concept_id);
CREATE INDEX IF NOT EXISTS idx_drug_era_person ON omop.drug_era (person_id);
CREATE INDEX IF NOT EXISTS idx_drug_era_concept ON omop.drug_era (drug_concept_id);
CREATE INDEX IF NOT EXISTS idx_image_occurrence_person ON omop.image_occurrence (person_id);
CREATE INDEX IF NOT EXISTS idx_image_occurrence_procedure ON omop.image_occurrence (procedure_occurrence_id);
CREATE INDEX IF NOT EXISTS idx_image_occurrence_modality ON omop.image_occurrence (modality_concept_id);
CREATE INDEX IF NOT EXISTS idx_image_occurrence_date ON omop.image_occurrence (image_occurrence_date);
CREATE INDEX IF NOT EXISTS idx_image_feature_person ON omop.image_feature (person_id);
CREATE INDEX IF NOT EXISTS idx_image_feature_occurrence ON omop.image_feature (image_occurrence_id);
CREATE INDEX IF NOT EXISTS idx_image_feature_concept ON omop.image_feature (image_feature_concept_id);
CREATE INDEX IF NOT EXISTS idx_concept_domain ON omop.concept (domain_id);
CREATE INDEX IF NOT EXISTS idx_concept_name ON omop.concept (concept_name);
CREATE INDEX IF NOT EXISTS idx_concept_relationship_2 ON omop.concept_relationship (concept_id_2);
CREATE INDEX IF NOT EXISTS idx_concept_ancestor_descendant ON omop.concept_ancestor (descendant_concept_id);
CREATE INDEX IF NOT EXISTS idx_concept_synonym_concept ON omop.concept_synonym (concept_id);
