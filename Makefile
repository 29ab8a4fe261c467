# SPDX-License-Identifier: MIT
#
# make            the module for $(KDIR) (kmod/elasticq.ko) and the userspace
# make check      every test, in QEMU on Debian's 6.1 and 6.12 kernels
# make run        boot a VM with the module loaded and run the demo
# make lint       checkpatch --strict, sparse, uapi C90 check
# make fuzz       fuzz the queue core (FUZZ_SECONDS=600), growing the corpus
# make tla        TLC on tla+/ (TLA2TOOLS_JAR=path/to/tla2tools.jar)
# make core-bench throughput of both queue cores in userspace (a table)
# make deps       install what the above need (run by check and run)

EQ_CACHE ?= /var/cache/elasticq
export ELASTICQ_CACHE := $(EQ_CACHE)
BUILD ?= build
KSFT := $(EQ_CACHE)/linux-source/ksft
CHECKPATCH := $(EQ_CACHE)/linux-source/scripts/checkpatch.pl

# The running kernel's build tree if it has one, else the newest installed.
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	$(shell ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1))
# The Debian kernels `make check` boots (and the debug kernels it builds).
KVERS ?= $(shell selftests/vm/kernels.sh)
# The kernel for `make run`: the newest generic Debian one.
KVER ?= $(lastword $(filter-out %-rt-amd64,$(KVERS)))

CC ?= cc
CFLAGS ?= -O2 -g
USER_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iuapi $(CFLAGS)

# The module's sources, not what an in-tree build generates (*.mod.c).
KMOD_C := $(filter-out %.mod.c,$(wildcard kmod/*.c)) $(wildcard kmod/*.h)
KMOD_SRCS := $(KMOD_C) kmod/Kbuild uapi/linux/elasticq.h
EXAMPLES := $(patsubst userspace/examples/%.c,$(BUILD)/examples/%, \
	$(wildcard userspace/examples/*.c))
SELFTESTS := $(patsubst selftests/elasticq/%.c,$(BUILD)/selftests/%, \
	$(wildcard selftests/elasticq/*.c))
UNIT_SRCS := kmod/eq_ring.c kmod/eq_lfring.c selftests/core/shim/shim.c

.PHONY: all module userspace selftests unit deps check run lint checkpatch \
	sparse uapi-check module-for fuzz tla core-bench clean

all: module userspace uapi-check

module:
	@test -n "$(KDIR)" || { echo "no kernel build tree: run make deps" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

userspace: $(EXAMPLES)

$(BUILD)/examples/%: userspace/examples/%.c uapi/linux/elasticq.h
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -o $@ $< -lpthread

selftests: $(SELFTESTS)

$(BUILD)/selftests/%: selftests/elasticq/%.c selftests/elasticq/eq_test.h \
		uapi/linux/elasticq.h
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -I$(KSFT) -o $@ $< -lpthread

# The queue core built in userspace over the shim, under ASan and UBSan,
# and under TSan.
UNIT_TESTS := ring_test lfring_test
unit: $(foreach t,$(UNIT_TESTS),$(BUILD)/core/$(t) $(BUILD)/core/$(t)_tsan)

UNIT_DEPS := $(UNIT_SRCS) kmod/eq_ring.h kmod/eq_lfring.h \
	$(wildcard selftests/core/*.h selftests/core/shim/*.h \
		selftests/core/shim/*/*.h) \
	uapi/linux/elasticq.h
UNIT_CC = $(CC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
	-Iselftests/core/shim -Iuapi -Ikmod -I$(KSFT) -o $@ \
	$(UNIT_SRCS) $< -lpthread -lurcu-memb

$(BUILD)/core/%_tsan: selftests/core/%.c $(UNIT_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) -fsanitize=thread

$(BUILD)/core/%: selftests/core/%.c $(UNIT_DEPS)
	@mkdir -p $(@D)
	$(UNIT_CC) -fsanitize=address,undefined -fno-sanitize-recover=all

# A benchmark, not a test: native, optimised, prints numbers.
$(BUILD)/core/core_bench: selftests/core/core_bench.c $(UNIT_DEPS)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE \
		-Iselftests/core/shim -Iuapi -Ikmod -o $@ \
		$(UNIT_SRCS) $< -lpthread -lurcu-memb

core-bench: $(BUILD)/core/core_bench
	$(BUILD)/core/core_bench $(BENCH_MESSAGES)

# The module for one kernel (MOD_KDIR, its build tree), built in a tree of
# links under $(BUILD)/kmod-$(MOD_NAME) so that builds for several kernels
# do not share objects.
MOD_NAME ?= $(KVER)
MOD_KDIR ?= /lib/modules/$(KVER)/build
KMOD_TREE = $(BUILD)/kmod-$(MOD_NAME)
define link_tree
	@mkdir -p $(1)/kmod
	@ln -sf $(addprefix $(CURDIR)/,$(wildcard kmod/*.c kmod/*.h) kmod/Kbuild) $(1)/kmod/
	@ln -sfn $(CURDIR)/uapi $(1)/uapi
	@echo 'obj-m := kmod/' > $(1)/Kbuild
endef

module-for:
	$(call link_tree,$(KMOD_TREE))
	$(MAKE) -C $(MOD_KDIR) M=$(CURDIR)/$(KMOD_TREE) W=1 KCFLAGS=-Werror modules

# sparse on every file of the module for that kernel; prints what it reports.
sparse:
	$(call link_tree,$(KMOD_TREE)-sparse)
	@$(MAKE) -s -C $(MOD_KDIR) M=$(CURDIR)/$(KMOD_TREE)-sparse \
		C=2 modules 2>&1 | grep -v -e '^  CHECK' -e 'Skipping BTF' || true

checkpatch:
	@perl $(CHECKPATCH) --strict --no-tree --quiet --show-types -f \
		$(KMOD_C) uapi/linux/elasticq.h

uapi-check:
	@echo '#include <linux/elasticq.h>' | \
		$(CC) -std=c90 -pedantic -Wall -Wextra -Werror -Iuapi -fsyntax-only -x c -

lint: deps checkpatch uapi-check
	@for k in $(KVERS); do $(MAKE) -s sparse KVER=$$k; done

deps:
	@selftests/vm/deps.sh

# Fuzz the queue core for FUZZ_SECONDS and keep what is new in the corpus.
FUZZ_SECONDS ?= 600
fuzz: deps
	@selftests/fuzz/run.sh --update-corpus $(FUZZ_SECONDS)

# LANES="6.1.0-56-amd64 kasan" runs only those lanes (all by default).
check: deps
	@KVERS="$(KVERS)" LANES="$(LANES)" EQ_BUILD=$(BUILD) selftests/check.sh

run: deps userspace module-for
	@selftests/vm/run-vm.sh -k $(KVER) -o $(BUILD)/run -t 600 \
		-m $(CURDIR)/$(KMOD_TREE)/kmod/elasticq.ko -- $(BUILD)/examples/burst-demo

# TLC on the lock-free algorithm's model (tla+/README): the real
# configuration must pass, the original crate's bug must be found.
# tla2tools.jar is not packaged for Debian: TLA2TOOLS_JAR=/path/to/it.
TLC = cd tla+ && java -XX:+UseParallelGC -cp "$(TLA2TOOLS_JAR)" tlc2.TLC \
	-workers 2 -cleanup
tla:
	@if [ -z "$(TLA2TOOLS_JAR)" ] || [ ! -r "$(TLA2TOOLS_JAR)" ]; then \
		echo "make tla: skipped: set TLA2TOOLS_JAR to tla2tools.jar"; \
		exit 0; \
	fi; \
	$(TLC) -config ElasticMPSC.cfg ElasticMPSC.tla || exit 1; \
	$(TLC) -config ElasticMPSC_Mutant.cfg ElasticMPSC.tla; rc=$$?; \
	if [ $$rc -ne 12 ]; then \
		echo "make tla: the mutant was not caught (TLC exit $$rc)"; \
		exit 1; \
	fi; \
	echo "make tla: model passes; mutant violates an invariant, as it must"

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf $(BUILD)
