# Makefile: hotreload's protocol, store, client library and CLI; tests, sanitizers, fuzzers, install.
VERSION    = 0.1.0
SOVERSION  = 0
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/user
COMPDIR    ?= $(PREFIX)/share/bash-completion/completions
UNITS       = hotreloadd.service hotreloadd.socket hotreloadd@.service hotreloadd@.socket

CFLAGS  ?= -O2 -g
WERROR  ?= -Werror
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(WERROR)
# -fvisibility=hidden: the library exports only what hotreload.h marks HR_EXPORT.
BASE     = -std=gnu11 -D_GNU_SOURCE -fPIC -fvisibility=hidden -MMD -MP -DHR_VERSION_STRING='"$(VERSION)"'
# SAN=1: AddressSanitizer and UndefinedBehaviorSanitizer, in a build dir of their own.
# CROSS=aarch64-linux-gnu-: libhotreload only, for that target, in a build dir of its own (see install).
ifneq ($(CROSS),)
B       ?= build-cross-$(patsubst %-,%,$(CROSS))
ifeq ($(origin CC),default)
CC       = $(CROSS)gcc
endif
ifeq ($(origin AR),default)
AR       = $(CROSS)ar
endif
else ifeq ($(SAN),1)
B       ?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
B       ?= build
endif
# What a program needs for hotreloadd --patch (PATCHING.md): room for a jump before each function and two NOPs at its
# entry, debug information, and for gcc no interprocedural assumptions across a patched function.
PATCH_CLANG_CFLAGS = -g -fpatchable-function-entry=7,5 -fno-omit-frame-pointer
PATCH_CFLAGS = $(PATCH_CLANG_CFLAGS) -flive-patching=inline-clone
ALL_CFLAGS = $(BASE) $(WARN) $(SANFLAGS) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

LIBNAME    = libhotreload.so.$(VERSION)
LIB        = $(B)/$(LIBNAME)
PROTO_OBJ  = $(B)/proto/hrp.o $(B)/proto/sha256.o
LIB_OBJ    = $(B)/client/hotreload.o $(B)/client/thread.o $(B)/client/find.o $(B)/client/symtab.o $(B)/client/guard.o $(B)/client/notes.o \
             $(B)/client/elfvars.o $(B)/client/elfcheck.o $(B)/client/elffile.o $(B)/client/dwarf.o $(B)/client/program.o \
             $(B)/client/patchload.o $(B)/client/patchcheck.o $(B)/client/redirect.o $(B)/client/progmod.o \
             $(B)/client/gdbjit.o $(PROTO_OBJ)
CLI_OBJ    = $(B)/client/cli.o $(B)/client/cli_builds.o $(B)/client/cli_daemon.o $(B)/client/json.o $(B)/daemon/store.o $(B)/daemon/fsinfo.o \
             $(B)/daemon/readfile.o $(PROTO_OBJ)
DAEMON_OBJ = $(patsubst %.c,$(B)/%.o,$(wildcard daemon/*.c)) $(B)/client/elfvars.o $(PROTO_OBJ)
TEST_SRC   = $(wildcard tests/test_*.c) tests/util.c tests/e2e.c tests/patchutil.c
TEST_OBJ   = $(TEST_SRC:%.c=$(B)/%.o) $(B)/client/json.o $(B)/client/dwarf.o $(B)/client/elffile.o $(B)/client/symtab.o $(B)/client/elfvars.o $(B)/client/elfcheck.o $(B)/client/guard.o $(B)/client/notes.o $(B)/daemon/store.o $(B)/daemon/project.o \
             $(B)/daemon/json.o $(B)/daemon/cdb.o $(B)/daemon/words.o $(B)/daemon/depfile.o $(B)/daemon/deps.o $(B)/daemon/config.o $(B)/daemon/readfile.o $(B)/daemon/build.o $(B)/daemon/loop.o \
             $(B)/daemon/fsinfo.o $(patsubst %.c,$(B)/%.o,$(wildcard daemon/watch*.c)) $(B)/daemon/log.o $(PROTO_OBJ)
FUZZ_SRC   = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_SECONDS ?= 20
MAKEFLAGS += --no-print-directory

.PHONY: FORCE all test check test-san test-tsan bench soak fuzz fuzz-seeds demo demo-sdl sdl-shots install install-lib uninstall clean deps
ifneq ($(CROSS),)
# The daemon and the CLI need sqlite3 and libinotifytools, which a cross machine lacks; they run on the build machine anyway.
$(info hotreload: CROSS=$(CROSS): libhotreload only (into $(B)/); the daemon and the CLI are built natively, without CROSS)
all: $(LIB) $(B)/libhotreload.a
else
all: $(LIB) $(B)/libhotreload.a $(B)/hotreload $(B)/hotreloadd
endif

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(B)/tests/%.o: ALL_CFLAGS += -DHR_BUILD_DIR='"$(abspath $(B))"' -DHR_SOURCE_DIR='"$(CURDIR)"' \
	-DHR_PATCH_CFLAGS='"$(PATCH_CFLAGS)"' -DHR_PATCH_CLANG_CFLAGS='"$(PATCH_CLANG_CFLAGS)"' \
	$(shell pkg-config --cflags criterion 2>/dev/null)

# The sdl suite builds a copy of the SDL game with make, instrumented as this build is.
$(B)/tests/test_sdl.o: ALL_CFLAGS += -DHR_SANFLAGS='"$(SANFLAGS)"'

# Where the daemon finds hotreload.h for the modules it builds (daemon/incdir.c says which it takes).
$(B)/daemon/incdir.o: ALL_CFLAGS += -DHRD_INCLUDEDIR='"$(INCLUDEDIR)"' -DHRD_BUILD_DIR='"$(abspath $(B))"' \
	-DHRD_SOURCE_INCLUDE='"$(CURDIR)/client"'

$(LIB): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libhotreload.so.$(SOVERSION) -Wl,--no-undefined $(ALL_LDFLAGS) -o $@ $^ -ldl -lpthread
	ln -sf $(LIBNAME) $(B)/libhotreload.so.$(SOVERSION)
	ln -sf libhotreload.so.$(SOVERSION) $(B)/libhotreload.so

$(B)/libhotreload.a: $(LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/hotreload: $(CLI_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lsqlite3

$(B)/hotreloadd: $(DAEMON_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -linotifytools -lsqlite3 -lpthread

# The end-to-end tests' game: a real program linked to the library as a user links it.
$(B)/tests/host: tests/host.c $(LIB) client/hotreload.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iclient -o $@ tests/host.c $(ALL_LDFLAGS) -L$(B) -lhotreload -pthread -Wl,-rpath,$(abspath $(B))

# The cross suite's game (tests/test_cross.c), when the cross tools are here: libhotreload installed for aarch64 into
# $(B)/cross/prefix as a user installs it (CROSS=...), and tests/host.c built against it through its pkg-config file.
XCROSS     = aarch64-linux-gnu-
XPREFIX    = $(abspath $(B))/cross/prefix
CROSS_HOST = $(if $(shell command -v $(XCROSS)gcc 2>/dev/null),$(B)/cross/host)
$(B)/cross/host: tests/host.c $(wildcard client/*.[ch] proto/*.[ch]) client/hotreload.pc.in
	$(MAKE) CROSS=$(XCROSS) CC=$(XCROSS)gcc AR=$(XCROSS)ar B=$(B)/cross/build SAN= SANFLAGS= DESTDIR= PREFIX=$(XPREFIX) install
	$(XCROSS)gcc -std=gnu11 -D_GNU_SOURCE $(WARN) -O2 -g -o $@ tests/host.c \
	    $$(PKG_CONFIG_LIBDIR=$(XPREFIX)/lib/pkgconfig pkg-config --cflags --libs hotreload) -pthread -Wl,-rpath,$(XPREFIX)/lib

$(B)/tests/run: $(TEST_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(shell pkg-config --libs criterion 2>/dev/null || echo -lcriterion) -lsqlite3 -linotifytools -lpthread

# test: what a fresh machine runs. deps.sh first, then a sub-make, so that the
# pkg-config look-ups above see what it installed.
test:
	sh scripts/deps.sh test
	$(MAKE) check

# The sanitizer run: the same unit and end-to-end suite under ASan+UBSan.
test-san:
	sh scripts/deps.sh test
	$(MAKE) SAN=1 check

# The daemon's and the client library's threads under ThreadSanitizer, through
# the end-to-end suites. Criterion itself does not run under TSan, so the
# daemon and the test host are instrumented, and a suite fails on anything TSan
# writes to the daemon's log or the host's stderr.
TSAN = B=build-tsan SANFLAGS="-fsanitize=thread -fno-omit-frame-pointer"
test-tsan:
	sh scripts/deps.sh test
	$(MAKE) $(TSAN) build-tsan/hotreloadd build-tsan/tests/host build-tsan/libhotreload.a
	$(MAKE) all build/tests/run build/tests/host build/demo/game
	@# the patch suites' programs link the instrumented library (HR_LIB_DIR) with TSan's runtime (HR_LIB_SAN)
	HR_DAEMON=$(CURDIR)/build-tsan/hotreloadd HR_HOST=$(CURDIR)/build-tsan/tests/host \
	    HR_LIB_DIR=$(CURDIR)/build-tsan HR_LIB_SAN=-fsanitize=thread \
	    build/tests/run --filter '@(daemon|client|reload|watchers|saves|bytes|patch|patchapi|patchd|patche2e)/*' $(TEST_ARGS)

check: all $(B)/tests/run $(B)/tests/host $(B)/demo/game $(B)/sdl/game $(CROSS_HOST)
ifneq ($(SAN),1)
	sh tests/install.sh $(B)
	sh tests/guide.sh $(B)
endif
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp $(B)/tests/run $(TEST_ARGS)

# fuzz: libFuzzer drivers, each run briefly from its seed corpus (new finds go
# to a scratch dir, and crash files to build-fuzz/FUZZER-crash-..., never into the repository).
FUZZ_B = build-fuzz
FUZZ_CFLAGS = -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
fuzz:
	sh scripts/deps.sh fuzz
	@mkdir -p $(FUZZ_B)
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_proto tests/fuzz/fuzz_proto.c proto/hrp.c
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_json tests/fuzz/fuzz_json.c client/json.c
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_depfile tests/fuzz/fuzz_depfile.c daemon/depfile.c
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_config tests/fuzz/fuzz_config.c daemon/config.c daemon/readfile.c proto/hrp.c
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_cdb tests/fuzz/fuzz_cdb.c daemon/cdb.c daemon/json.c daemon/words.c daemon/readfile.c proto/hrp.c
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_mountinfo tests/fuzz/fuzz_mountinfo.c daemon/fsinfo.c daemon/readfile.c
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_dwarf tests/fuzz/fuzz_dwarf.c tests/fuzz/elfinput.c client/dwarf.c client/elffile.c
	clang $(FUZZ_CFLAGS) -o $(FUZZ_B)/fuzz_patch tests/fuzz/fuzz_patch.c tests/fuzz/elfinput.c client/patchcheck.c client/elffile.c
	set -e; for f in proto json depfile config mountinfo cdb dwarf patch; do \
	    rm -rf $(FUZZ_B)/new-$$f; mkdir -p $(FUZZ_B)/new-$$f; \
	    $(FUZZ_B)/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(FUZZ_B)/$$f- \
	        $(FUZZ_B)/new-$$f tests/fuzz/corpus/$$f; \
	done

# Benchmarks print their figures; nothing asserts a timing. scripts/bench/bench.c: what they share.
BENCH_C = scripts/bench/bench.c
bench: all
	$(CC) $(ALL_CFLAGS) -o $(B)/bench_store scripts/bench/bench_store.c $(BENCH_C) $(B)/daemon/store.o $(PROTO_OBJ) -lsqlite3
	$(CC) $(ALL_CFLAGS) -Iclient -o $(B)/bench_reload scripts/bench/bench_reload.c $(BENCH_C) $(PROTO_OBJ) \
	    -L$(B) -lhotreload -Wl,-rpath,$(abspath $(B))
	$(CC) $(ALL_CFLAGS) -Iclient -o $(B)/bench_frame scripts/bench/bench_frame.c -L$(B) -lhotreload -Wl,-rpath,$(abspath $(B))
	$(B)/bench_store
	$(B)/bench_reload $(B)/hotreloadd
	$(B)/bench_frame $(B)/hotreloadd
	$(CC) $(ALL_CFLAGS) -o $(B)/bench_build scripts/bench/bench_build.c $(BENCH_C) $(PROTO_OBJ)
	$(B)/bench_build $(B)/hotreloadd
	$(CC) $(ALL_CFLAGS) -Iclient -o $(B)/bench_watch scripts/bench/bench_watch.c -L$(B) -lhotreload -Wl,-rpath,$(abspath $(B))
	$(B)/bench_watch $(B)/hotreloadd
	$(CC) $(ALL_CFLAGS) -o $(B)/bench_config scripts/bench/bench_config.c $(B)/daemon/config.o $(B)/daemon/readfile.o $(PROTO_OBJ)
	$(B)/bench_config
	$(CC) $(ALL_CFLAGS) -Iclient -o $(B)/bench_remote scripts/bench/bench_remote.c $(BENCH_C) -L$(B) -lhotreload -Wl,-rpath,$(abspath $(B))
	$(B)/bench_remote $(B)/hotreloadd
	$(CC) $(ALL_CFLAGS) -o $(B)/bench_handover scripts/bench/bench_handover.c $(BENCH_C) $(PROTO_OBJ)
	$(B)/bench_handover
	$(CC) $(ALL_CFLAGS) -DPATCH_FLAGS='"$(PATCH_CFLAGS)"' -DHR_BUILD_DIR='"$(abspath $(B))"' -DHR_SOURCE_DIR='"$(CURDIR)"' \
	    -o $(B)/bench_patch scripts/bench/bench_patch.c $(BENCH_C)
	$(B)/bench_patch $(B)/hotreloadd scripts/bench/bench_patch_prog.c

# The soak: one game (tests/host.c) through 5,000 switches of a module and 1,000 of a folder module, built by
# tcc; it prints what the game and the daemon hold at the start and the end (SOAK_ARGS: other counts). Not in test.
soak:
	sh scripts/deps.sh soak
	$(MAKE) all $(B)/tests/host
	$(CC) $(ALL_CFLAGS) -o $(B)/soak scripts/soak/soak.c $(ALL_LDFLAGS) -lsqlite3
	$(B)/soak $(B)/hotreloadd $(B)/hotreload $(B)/tests/host $(SOAK_ARGS)

# Rewrite the protocol seed corpus from the encoder (after a protocol change), and the patch engine's from
# tests/fuzz/elf/*.c built with the patching flags by gcc and clang: objects (patch, dwarf) and a program (dwarf); split.c
# also as DWARF 4 (.debug_ranges where 5 has .debug_rnglists).
SEED_CCS = gcc clang
fuzz-seeds:
	@mkdir -p $(FUZZ_B) tests/fuzz/corpus/patch tests/fuzz/corpus/dwarf
	$(CC) -D_GNU_SOURCE -o $(FUZZ_B)/mkseeds tests/fuzz/mkseeds.c proto/hrp.c
	$(FUZZ_B)/mkseeds tests/fuzz/corpus/proto
	set -e; for cc in $(SEED_CCS); do \
	    [ $$cc = gcc ] && fl="$(PATCH_CFLAGS)" || fl="$(PATCH_CLANG_CFLAGS)"; \
	    for s in game inline split; do for o in O0 O2; do \
	        $$cc $$fl -$$o -fdebug-prefix-map=$(CURDIR)=/src -c tests/fuzz/elf/$$s.c -o tests/fuzz/corpus/patch/$$s-$$cc-$$o.o; \
	        cp tests/fuzz/corpus/patch/$$s-$$cc-$$o.o tests/fuzz/corpus/dwarf/; \
	    done; done; \
	    $$cc $$fl -O2 -gdwarf-4 -fdebug-prefix-map=$(CURDIR)=/src -c tests/fuzz/elf/split.c -o tests/fuzz/corpus/dwarf/split-$$cc-dwarf4.o; \
	    $$cc $$fl -O2 -fdebug-prefix-map=$(CURDIR)=/src -o tests/fuzz/corpus/dwarf/program-$$cc tests/fuzz/elf/*.c; \
	done

# The demo: the daemon on examples/demo/modules, and the game beside it.
$(B)/demo/game: examples/demo/game.c $(LIB) client/hotreload.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iclient -o $@ examples/demo/game.c $(ALL_LDFLAGS) -L$(B) -lhotreload -Wl,-rpath,$(abspath $(B))

demo:
	sh scripts/deps.sh build
	$(MAKE) all $(B)/demo/game
	sh scripts/demo.sh $(B)

# The SDL example: a real game whose gameplay (examples/sdl/modules) reloads; SDL2 is its only dependency. Its host
# (game.c, hud.c, draw.c, font.c) is built with the patch flags, one unit at a time, and $(SDL_B)/compile_commands.json
# holds those very commands, for hotreloadd --patch (PATCHING.md). SDL_DIR and SDL_B: where its sources are and where it
# is built (the sdl suite builds a copy of its own).
SDL_DIR   ?= examples/sdl
SDL_B     ?= $(B)/sdl
SDL_UNITS  = game hud draw font
SDL_OBJ    = $(SDL_UNITS:%=$(SDL_B)/%.o)
# Not the library's -fvisibility=hidden: the linker makes hidden globals local, and a patch of one unit binds to the
# others' functions through the executable's globals.
sdl_cc     = $(CC) $(filter-out -fvisibility=hidden,$(ALL_CFLAGS)) $(PATCH_CFLAGS) -Iclient $(shell pkg-config --cflags sdl2) -c $(SDL_DIR)/$(1).c -o $(SDL_B)/$(1).o
json_str   = "$(subst ",\",$(subst \,\\,$(1)))"
comma     := ,
define newline


endef
# Each object depends on the database, which changes when a command does.
$(SDL_B)/%.o: $(SDL_DIR)/%.c $(wildcard $(SDL_DIR)/*.h) client/hotreload.h $(SDL_B)/compile_commands.json
	$(call sdl_cc,$*)

$(SDL_B)/game: $(SDL_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $(SDL_OBJ) -L$(B) -lhotreload -Wl,-rpath,$(abspath $(B)) $$(pkg-config --libs sdl2) -lm

# Written each time, replaced only when it changed: the daemon reads it again whenever it is replaced.
sdl_entry = {"directory": $(call json_str,$(CURDIR)), "file": $(call json_str,$(SDL_DIR)/$(1).c), \
             "output": $(call json_str,$(SDL_B)/$(1).o), "command": $(call json_str,$(call sdl_cc,$(1)))}
$(SDL_B)/compile_commands.json: FORCE | $(SDL_B)/
	$(file >$@.tmp,[$(subst } {,}$(comma)$(newline) {,$(foreach u,$(SDL_UNITS),$(call sdl_entry,$(u))))])
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv -f $@.tmp $@; fi

$(SDL_B)/:
	mkdir -p $@

FORCE:

demo-sdl:
	sh scripts/deps.sh sdl
	$(MAKE) all $(B)/sdl/game
	sh scripts/demo.sh $(B) sdl

# Screenshots of one reload in the SDL example, for the README (examples/sdl/shots/).
sdl-shots:
	sh scripts/deps.sh sdl
	$(MAKE) all $(B)/sdl/game
	sh scripts/sdl-shots.sh $(B)

# The library, its header and its pkg-config file: all that a cross install (CROSS=...) puts in PREFIX.
install-lib: $(LIB) $(B)/libhotreload.a
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 755 $(LIB) $(DESTDIR)$(LIBDIR)/$(LIBNAME)
	ln -sf $(LIBNAME) $(DESTDIR)$(LIBDIR)/libhotreload.so.$(SOVERSION)
	ln -sf libhotreload.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libhotreload.so
	install -m 644 $(B)/libhotreload.a $(DESTDIR)$(LIBDIR)/libhotreload.a
	install -m 644 client/hotreload.h $(DESTDIR)$(INCLUDEDIR)/hotreload.h
	@# made here, not at build time, so that it names the PREFIX of this install
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' client/hotreload.pc.in > $(B)/hotreload.pc
	install -m 644 $(B)/hotreload.pc $(DESTDIR)$(LIBDIR)/pkgconfig/hotreload.pc

ifneq ($(CROSS),)
install: install-lib
else
install: all install-lib
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(COMPDIR)
	install -m 755 $(B)/hotreload $(DESTDIR)$(BINDIR)/hotreload
	install -m 755 $(B)/hotreloadd $(DESTDIR)$(BINDIR)/hotreloadd
	@# program patching (PATCHING.md): the flags for gcc and for clang, in pkg-config files and a CMake package
	for f in hotreload-patch.pc hotreload-patch-clang.pc hotreloadConfig.cmake hotreloadConfigVersion.cmake; do \
	    sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	        -e 's|@VERSION@|$(VERSION)|' -e 's|@VERSION_MAJOR@|$(firstword $(subst ., ,$(VERSION)))|' \
	        -e 's|@SOVERSION@|$(SOVERSION)|' -e 's|@PATCH_CFLAGS@|$(PATCH_CFLAGS)|' \
	        -e 's|@PATCH_CLANG_CFLAGS@|$(PATCH_CLANG_CFLAGS)|' -e 's|@PATCH_CFLAGS_LIST@|$(subst $(eval) ,;,$(PATCH_CFLAGS))|' \
	        -e 's|@PATCH_CLANG_CFLAGS_LIST@|$(subst $(eval) ,;,$(PATCH_CLANG_CFLAGS))|' client/$$f.in > $(B)/$$f || exit 1; done
	install -m 644 $(B)/hotreload-patch.pc $(B)/hotreload-patch-clang.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -d $(DESTDIR)$(LIBDIR)/cmake/hotreload
	install -m 644 $(B)/hotreloadConfig.cmake $(B)/hotreloadConfigVersion.cmake $(DESTDIR)$(LIBDIR)/cmake/hotreload/
	install -m 644 client/hotreload.1 $(DESTDIR)$(MANDIR)/man1/hotreload.1
	install -m 644 client/hotreload.3 $(DESTDIR)$(MANDIR)/man3/hotreload.3
	install -m 644 daemon/hotreload.conf.5 $(DESTDIR)$(MANDIR)/man5/hotreload.conf.5
	install -m 644 daemon/hotreloadd.8 $(DESTDIR)$(MANDIR)/man8/hotreloadd.8
	install -m 644 client/hotreload.bash $(DESTDIR)$(COMPDIR)/hotreload
	@# the units name the installed daemon
	@# (through install -m 644: a umask of 077 must not leave them unreadable to the user's systemd)
	for u in $(UNITS); do sed 's|@BINDIR@|$(BINDIR)|' systemd/$$u > $(B)/$$u && \
	    install -m 644 $(B)/$$u $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	@# ldconfig when the library went where the loader looks (as root, without DESTDIR); else how to find it
	@sh scripts/ldconfig.sh '$(LIBDIR)' '$(DESTDIR)'
endif

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/hotreload $(DESTDIR)$(BINDIR)/hotreloadd $(DESTDIR)$(LIBDIR)/$(LIBNAME) \
	      $(DESTDIR)$(LIBDIR)/libhotreload.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libhotreload.so \
	      $(DESTDIR)$(LIBDIR)/libhotreload.a $(DESTDIR)$(INCLUDEDIR)/hotreload.h \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/hotreload.pc $(UNITS:%=$(DESTDIR)$(UNITDIR)/%) \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/hotreload-patch.pc $(DESTDIR)$(LIBDIR)/pkgconfig/hotreload-patch-clang.pc \
	      $(DESTDIR)$(LIBDIR)/cmake/hotreload/hotreloadConfig.cmake $(DESTDIR)$(LIBDIR)/cmake/hotreload/hotreloadConfigVersion.cmake \
	      $(DESTDIR)$(MANDIR)/man1/hotreload.1 $(DESTDIR)$(MANDIR)/man3/hotreload.3 $(DESTDIR)$(MANDIR)/man8/hotreloadd.8 \
	      $(DESTDIR)$(MANDIR)/man5/hotreload.conf.5 \
	      $(DESTDIR)$(COMPDIR)/hotreload
	-rmdir $(DESTDIR)$(LIBDIR)/cmake/hotreload $(DESTDIR)$(LIBDIR)/cmake 2>/dev/null

deps:
	sh scripts/deps.sh all

clean:
	rm -rf build build-san build-tsan build-fuzz build-cross-*

-include $(shell find $(B) -name '*.d' 2>/dev/null)
