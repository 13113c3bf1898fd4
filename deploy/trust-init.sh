#!/bin/sh
# One-shot set-up of a trust's OMOP database in the compose deployment (service omop-init-<trust>).
#
# `omopfed trust init-db` creates schema omop and the read-only role data_analyst_reader, idempotently, from
# OMOPFED_DB_URL(_FILE) and OMOPFED_READER_PASSWORD(_FILE). Demo data is loaded only while the omop tables
# are empty: `docker compose up` runs this job again every time, and it must never duplicate or replace a
# hospital's data. OMOPFED_SEED_PERSONS=0 (the default) loads nothing: the hospital's ETL fills the schema.
set -eu

omopfed trust init-db

persons="${OMOPFED_SEED_PERSONS:-0}"
if [ "$persons" -gt 0 ]; then
    if output=$(omopfed trust seed --persons "$persons" --seed "${OMOPFED_SEED:-1}" 2>&1); then
        printf '%s\n' "$output"
    else
        case "$output" in
            *"already hold data"*) echo "omop tables already hold data: nothing loaded" ;;
            *) printf '%s\n' "$output" >&2; exit 1 ;;
        esac
    fi
fi
