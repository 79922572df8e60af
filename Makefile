# decide — PGXS build. Tests live at the top level: sql/ + expected/ (pg_regress),
# specs/ (isolation), t/ (TAP).
EXTENSION = decide
EXTVERSION = $(shell grep default_version $(EXTENSION).control | sed -e "s/default_version[[:space:]]*=[[:space:]]*'\([^']*\)'/\1/")

MODULE_big = decide
OBJS = \
	src/decide.o \
	src/decision.o \
	src/audit_log.o \
	src/hot_keys.o \
	src/worker.o \
	src/worker_flush.o \
	src/worker_latch.o \
	src/worker_maintain.o \
	src/worker_standby.o \
	src/worker_warm.o \
	src/input.o \
	src/uid.o \
	src/glob.o \
	src/evaluator.o \
	src/condition.o \
	src/entity_store.o \
	src/policy_set.o \
	src/decision_cache.o \
	src/request_key.o \
	src/cache_value.o \
	src/log_record.o \
	src/redis_cache.o \
	src/stats.o

# Install and upgrade scripts: sql/decide--<version>.sql, sql/decide--<from>--<to>.sql
DATA = $(wildcard sql/$(EXTENSION)--*.sql)

REGRESS = $(sort $(filter-out $(EXTENSION)--%,$(patsubst sql/%.sql,%,$(wildcard sql/*.sql))))
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

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
	-Wno-sign-compare -I$(srcdir)/src

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
