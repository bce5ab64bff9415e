#!/usr/bin/env bash
# Runs restore.sh's own functions, from its pre-flight to its end, against a snapshot in a
# shared-filesystem repository that the test registered (RESTORE_FS_REPOSITORY), for what
# only the local Elasticsearch node can show (feature states, its version rules, a single
# node). Only the S3 steps of the job (keystores, reload, S3 repository) are left out: the
# OpenSearch cluster tests cover those. The integ-test distribution has no GET / (its
# rest-root module is not included), so the engine's version is read from GET _nodes/_local.
# Environment: that of restore.sh (DP_DB_HOST, DP_DB_PORT, DP_BACKUP_NAME, RESTORE_*), plus
# RESTORE_FS_REPOSITORY.
set -euo pipefail

JOBS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../addons/elasticsearch/dataprotection" && pwd)
# shellcheck source=../../../addons/elasticsearch/dataprotection/restore.sh disable=SC1091
source "${JOBS_DIR}/restore.sh"
# shellcheck source=tests/e2e/lib/integ_test_engine.sh
source "$(dirname "${BASH_SOURCE[0]}")/integ_test_engine.sh"

fs_main() {
  job_init restore
  validate_restore_options
  load_job_env
  write_auth_config
  detect_engine_from_nodes
  : "${RESTORE_FS_REPOSITORY:?the test names its shared-filesystem repository}"
  REPOSITORY=$RESTORE_FS_REPOSITORY
  # Registered by the test, not by this job: on_exit must leave it. (These globals are
  # read by common.sh's and restore.sh's functions.)
  # shellcheck disable=SC2034
  REPOSITORY_REGISTERED=false
  # shellcheck disable=SC2034
  S3_BUCKET='(shared filesystem)'
  # shellcheck disable=SC2034
  REPO_BASE_PATH=$REPOSITORY
  read_snapshot
  restore_from_repository
  job_done
}

fs_main "$@"
