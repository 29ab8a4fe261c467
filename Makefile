# SPDX-License-Identifier: MIT
#
# make            the module for $(KDIR) (kmod/elasticq.ko) and the userspace
# make check      every test, in QEMU on Debian's 6.1 and 6.12 kernels
# make run        boot a VM with the module loaded and run the demo
# make lint       checkpatch --strict, sparse, uapi C90 check
# make fuzz       fuzz the queue core (FUZZ_SECONDS=600), growing the corpus
# make tla        TLC on tla+/ (TLA2TOOLS_JAR=path/to/tla2tools.jar)
# make core-bench throughput of both queue cores in userspace (a table)
# make bench      elasticq against mqueue, pipes, AF_UNIX in a VM (table, CSV, PNG)
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
	sparse uapi-check module-for fuzz tla core-bench clean lib eqctl install

all: module userspace uapi-check

module:
	@test -n "$(KDIR)" || { echo "no kernel build tree: run make deps" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

userspace: $(EXAMPLES) lib eqctl $(BUILD)/bin/eq-bench

# libelasticq and eqctl (userspace/README.md); one PIC object serves both
# the static and the shared library.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
LIB_VERSION := 0.1.0
LIB_A := $(BUILD)/lib/libelasticq.a
LIB_SO := $(BUILD)/lib/libelasticq.so.0
LIB_PC := $(BUILD)/lib/libelasticq.pc
LIB_H := userspace/lib/libelasticq.h uapi/linux/elasticq.h
EQCTL := $(BUILD)/bin/eqctl

lib: $(LIB_A) $(LIB_SO) $(LIB_PC)
eqctl: $(EQCTL)

$(BUILD)/lib/libelasticq.o: userspace/lib/libelasticq.c $(LIB_H)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -fPIC -c -o $@ $<

$(LIB_A): $(BUILD)/lib/libelasticq.o
	rm -f $@ && $(AR) rcs $@ $<

$(LIB_SO): $(BUILD)/lib/libelasticq.o userspace/lib/libelasticq.map
	$(CC) -shared -Wl,-soname,libelasticq.so.0 -Wl,-z,defs \
		-Wl,--version-script=userspace/lib/libelasticq.map -o $@ $< -luring
	ln -sf libelasticq.so.0 $(BUILD)/lib/libelasticq.so

$(LIB_PC): userspace/lib/libelasticq.pc.in Makefile
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(LIB_VERSION)|' \
		$< > $@

$(EQCTL): userspace/eqctl/eqctl.c $(LIB_A) $(LIB_H)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -Iuserspace/lib -o $@ $< $(LIB_A) -luring

install: lib $(EQCTL)
	install -d $(DESTDIR)$(INCLUDEDIR)/linux $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(BINDIR)
	install -m 644 userspace/lib/libelasticq.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 uapi/linux/elasticq.h $(DESTDIR)$(INCLUDEDIR)/linux/
	install -m 644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libelasticq.so.0 $(DESTDIR)$(LIBDIR)/libelasticq.so
	install -m 644 $(LIB_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 755 $(EQCTL) $(DESTDIR)$(BINDIR)/

$(BUILD)/examples/%: userspace/examples/%.c uapi/linux/elasticq.h
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -o $@ $< -lpthread

selftests: $(SELFTESTS)

$(BUILD)/selftests/%: selftests/elasticq/%.c selftests/elasticq/eq_test.h \
		uapi/linux/elasticq.h
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -I$(KSFT) $(TEST_CFLAGS) -o $@ $< $(TEST_LIBS) -lpthread

# The tests of the library and of eqctl link the static library.
LIB_TESTS := $(BUILD)/selftests/libeq $(BUILD)/selftests/eqctl
$(LIB_TESTS): $(LIB_A) $(LIB_H)
$(LIB_TESTS): TEST_CFLAGS := -Iuserspace/lib
$(LIB_TESTS): TEST_LIBS := $(LIB_A) -luring
$(BUILD)/selftests/eqctl: $(EQCTL)

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

# The MQTT-proxy demo; burst-demo stays as the smaller example.
run: deps userspace module-for
	@selftests/vm/run-vm.sh -k $(KVER) -o $(BUILD)/run -t 600 \
		-m $(CURDIR)/$(KMOD_TREE)/kmod/elasticq.ko -- $(BUILD)/examples/mqtt-proxy

# The demo drains through libelasticq's io_uring consumer.
$(BUILD)/examples/mqtt-proxy: userspace/examples/mqtt-proxy.c $(LIB_A) $(LIB_H)
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -Iuserspace/lib -o $@ $< $(LIB_A) -luring

# eq-bench against mqueue, pipes and AF_UNIX in one VM boot (about 6
# minutes under TCG), then its chart: $(BUILD)/bench/bench.{csv,png}.
# BENCH_ARGS go to eq-bench, e.g. BENCH_ARGS="-n 5000 -r 3" for a quick look.
EQ_BENCH := $(BUILD)/bin/eq-bench
BENCH_ARGS ?=
.PHONY: bench
bench: deps $(EQ_BENCH) module-for
	@EQ_BENCH=$(EQ_BENCH) userspace/bench/run-bench.sh $(KVER) \
		$(CURDIR)/$(KMOD_TREE)/kmod/elasticq.ko $(BUILD)/bench $(BENCH_ARGS)

# Raw uapi and hand-made io_uring SQEs: the benchmark measures the kernel
# interface itself, not a library's wrappers.
$(EQ_BENCH): userspace/bench/eq-bench.c uapi/linux/elasticq.h
	@mkdir -p $(@D)
	$(CC) $(USER_CFLAGS) -o $@ $< -luring -lrt

# TLC on every model and configuration in tla+/ (tla+/README, tla+/check.sh):
# the models as implemented must pass, every mutant must be caught by the
# property it is meant to violate.  Output and by-products in $(BUILD)/tla.
# tla2tools.jar is not packaged for Debian: TLA2TOOLS_JAR=/path/to/it.
TLC_WORKERS ?= 2
tla:
	@if [ -z "$(TLA2TOOLS_JAR)" ] || [ ! -r "$(TLA2TOOLS_JAR)" ]; then \
		echo "make tla: skipped: set TLA2TOOLS_JAR to tla2tools.jar"; \
		exit 0; \
	fi; \
	tla+/check.sh "$(TLA2TOOLS_JAR)" "$(BUILD)/tla" "$(TLC_WORKERS)"

clean:
	@test -z "$(KDIR)" || $(MAKE) -C $(KDIR) M=$(CURDIR) clean
	rm -rf $(BUILD)
