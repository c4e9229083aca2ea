# nxc — see README.md. Every target installs the Debian packages it needs (idempotent).
SWIFT    ?= swift
PREFIX   ?= /usr/local
NXC      := .build/release/nxc
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Host tools: image building, VMs, the private network, SSH, tmux, C libraries we link.
APT_PACKAGES := mmdebstrap qemu-system-x86 vde2 kmod openssh-client tmux zstd netcat-openbsd squashfs-tools-ng \
                libarchive-dev libjansson-dev libssl-dev binutils ca-certificates debian-archive-keyring python3 iproute2
# The docker flavour's tests and benchmarks need an engine (the tests start dockerd when none runs).
DOCKER_PACKAGES := docker.io docker-compose
# The nspawn flavour runs containers with systemd-nspawn and unpacks its tree with bsdtar.
NSPAWN_PACKAGES := systemd-container libarchive-tools
# The tests also build as a normal user (mmdebstrap unshare mode needs newuidmap).
# The pxe flavour's test netboots VMs from a DHCP server (dnsmasq) on a bridge in a network namespace,
# and mounts its store host's export here with sshfs (as a frontend mounts its NFS home).
TEST_PACKAGES := $(DOCKER_PACKAGES) uidmap $(NSPAWN_PACKAGES) dnsmasq-base sshfs fdisk
BENCH_PACKAGES := debootstrap $(DOCKER_PACKAGES) $(NSPAWN_PACKAGES) dnsmasq-base

.PHONY: all deps build test unit fuzz e2e demo bench install clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

build: deps
	$(SWIFT) build -c release --product nxc
	$(SWIFT) build -c release --product nxc-agent
	strip .build/release/nxc-agent
	@ls -l .build/release/nxc-agent | awk '{print "nxc-agent: " $$5 " bytes (stripped, static Swift runtime)"}'

# Unit tests, the agent's tests, the fuzz targets, the end-to-end tests with real QEMU VMs and a real
# Docker engine, and a build and boot as a normal user; each phase timed (Tests/suite.sh).
test:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(TEST_PACKAGES)"
	SWIFT=$(SWIFT) bash Tests/suite.sh

unit: deps
	$(SWIFT) test --skip EndToEndTests

# The fuzz targets alone (Tests/fuzz/run.sh; FUZZ_SECONDS per target, default 60).
fuzz: deps
	bash Tests/fuzz/run.sh $(or $(FUZZ_SECONDS),60)

# Build and start the webserver example in VMs, fetch its page from client1, stop.
demo: build
	$(NXC) build -f vm-ramdisk compositions/webserver
	$(NXC) start -f vm-ramdisk compositions/webserver
	$(NXC) exec client1 -- curl -sf http://server/ || { $(NXC) stop; exit 1; }
	$(NXC) status
	$(NXC) stop

# vm-ramdisk figures (docs/benchmarks.md), g5k-ramdisk ones (docs/benchmarks-g5k.md), docker ones (docs/benchmarks-docker.md), g5k-image ones (docs/benchmarks-g5k-image.md), lock/export/verify ones (docs/benchmarks-repro.md), nspawn ones (docs/benchmarks-nspawn.md), distribution to N simulated testbed hosts and its faults (docs/benchmarks-scale.md, then bench/faults-vm.sh appends a host that never comes back, with VMs), nfs-store beside g5k-ramdisk (docs/benchmarks-netboot.md), pxe and pxe-nfs-store beside vm-ramdisk (docs/benchmarks-pxe.md).
bench: build
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(BENCH_PACKAGES)"
	bash bench/run.sh
	bash bench/g5k.sh
	bash bench/docker.sh
	bash bench/g5k-image.sh
	bash bench/repro.sh
	bash bench/nspawn.sh
	bash bench/scale.sh
	bash bench/faults-vm.sh
	bash bench/netboot.sh
	bash bench/pxe.sh

install: build
	install -D -m 755 $(NXC) $(DESTDIR)$(PREFIX)/bin/nxc
	install -D -m 755 .build/release/nxc-agent $(DESTDIR)$(PREFIX)/lib/nxc/nxc-agent
	mkdir -p $(DESTDIR)$(PREFIX)/share/nxc
	cp -r flavours templates $(DESTDIR)$(PREFIX)/share/nxc/

clean:
	rm -rf .build .build-fuzz build deploy .nxc
