#!/usr/bin/env bash
# Runs backup.sh whole, as the job does, against an Elasticsearch integ-test node: the one
# stand-in is the engine's detection (lib/integ_test_engine.sh), since that distribution has
# no GET /. Environment: backup.sh's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../../addons/elasticsearch/dataprotection/backup.sh disable=SC1091
source "${HERE}/../../../addons/elasticsearch/dataprotection/backup.sh"
# shellcheck source=tests/e2e/lib/integ_test_engine.sh
source "${HERE}/integ_test_engine.sh"

detect_engine() { detect_engine_from_nodes; }

main "$@"
