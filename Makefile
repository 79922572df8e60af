# decide — PGXS build. Tests live at the top level: sql/ + expected/ (pg_regress),
# specs/ (isolation), t/ (TAP).
EXTENSION = decide
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = decide

# The sources in layers, each including headers of its own layer or below
# only (scripts/check-layers.sh checks it; docs/design.md draws it):
#   src/core      pure C, no PostgreSQL header: testable and fuzzable alone
#   src/base      backend basics: counters, input rules, conditions, the worker registry
#   src/services  state and services: policy set, entities, caches, Redis, log
#   src/pipeline  one decision, end to end; listings of allowed entities
#   src/entry     SQL-callable functions, the statistics report, the launcher and workers
CORE_OBJS = src/core/glob.o src/core/evaluator.o src/core/request_key.o \
	src/core/cache_value.o src/core/uid.o src/core/log_record.o src/core/log_chunk.o src/core/entity_image.o
BASE_OBJS = src/base/stats.o src/base/input.o src/base/condition.o src/base/worker_registry.o \
	src/base/bytes_table.o
SERVICES_OBJS = src/services/policy_set.o src/services/entity_store.o \
	src/services/decision_cache.o src/services/hot_keys.o src/services/redis_client.o \
	src/services/redis_cache.o src/services/audit_log.o src/services/log_stream.o \
	src/services/shared_sets.o src/services/listing_cache.o src/services/entity_images.o \
	src/services/log_chain.o
PIPELINE_OBJS = src/pipeline/decision.o src/pipeline/listing.o
ENTRY_OBJS = src/entry/decide.o src/entry/stats_report.o src/entry/launcher.o src/entry/worker.o src/entry/worker_flush.o \
	src/entry/worker_common.o src/entry/worker_standby.o src/entry/worker_maintain.o \
	src/entry/worker_warm.o src/entry/listing_functions.o src/entry/change_history.o \
	src/entry/log_verify.o src/entry/log_chunks.o
OBJS = $(CORE_OBJS) $(BASE_OBJS) $(SERVICES_OBJS) $(PIPELINE_OBJS) $(ENTRY_OBJS)
LAYER_DIRS = core base services pipeline entry

# Install and upgrade scripts: sql/extension/decide--<version>.sql (the whole
# schema) and sql/extension/decide--<from>--<to>.sql (each earlier version to it)
DATA = $(wildcard sql/extension/$(EXTENSION)--*.sql)

REGRESS = $(sort $(patsubst sql/%.sql,%,$(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-config=scripts/regress.conf --temp-instance=tmp_check_regress \
	--load-extension=$(EXTENSION)

# Isolation specs (specs/<name>.spec, expected output expected/<name>.out) and
# TAP tests (t/*.pl), each wired only when there is at least one, so that an
# empty specs/ or t/ costs nothing. Both run in their own temporary instances
# with the same settings as the regression tests.
ifneq ($(wildcard specs/*.spec),)
ISOLATION = $(patsubst specs/%.spec,%,$(wildcard specs/*.spec))
ISOLATION_OPTS = --temp-config=scripts/regress.conf --temp-instance=tmp_check_iso \
	--load-extension=$(EXTENSION)
endif
ifneq ($(wildcard t/*.pl),)
TAP_TESTS = 1
endif

# -Werror is for the test command and CI (scripts/test.sh passes COPT=-Werror),
# not for every user's or packager's build.
WARNINGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
PG_CPPFLAGS = $(WARNINGS) $(foreach d,$(LAYER_DIRS),-I$(srcdir)/src/$(d))

SHLIB_LINK = -lhiredis

# Header dependencies: gcc writes src/<file>.d beside each object, so that an
# object is rebuilt when a header it includes changes (a struct that grows
# in a header must never meet objects compiled against its old layout).
# PG_CFLAGS, not PG_CPPFLAGS: the LLVM bitcode rules must not write them too.
PG_CFLAGS = -MMD -MP
EXTRA_CLEAN += $(OBJS:.o=.d)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(OBJS:.o=.d)

# The core builds without the server's include paths: a PostgreSQL header
# included there fails the build.
$(CORE_OBJS) $(CORE_OBJS:.o=.bc): override CPPFLAGS = $(WARNINGS) -I$(srcdir)/src/core

# Hardening tools (fuzz/README.md, docs/security.md). Not part of the build.
#   make unittest        property checks of the pure-C modules (glob, request
#                        keys, evaluator) with gcc: deterministic, ~15 s
#   make fuzz            libFuzzer targets, FUZZ_SECONDS (default 60) each
#   make sanitize        the extension built with ASan+UBSan, pg_regress and
#                        isolation suites run under it (as root)
.PHONY: unittest fuzz sanitize
unittest:
	$(MAKE) -f fuzz/Makefile unittest
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)
sanitize:
	bash fuzz/sanitize.sh
EXTRA_CLEAN += fuzz/build
