# Entry points (see README). Everything runs as root on Debian 12.
BUILD ?= build
# What a fresh Debian 12 needs to build, test and demo hostd.
DEPS := build-essential cmake ninja-build pkg-config \
        libsystemd-dev libblkid-dev libmount-dev libpq-dev libtomlplusplus-dev nlohmann-json3-dev \
        libcli11-dev libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev libssl-dev libgtest-dev libgmock-dev \
        postgresql-15 postgresql-client-15 haproxy systemd systemd-container dbus e2fsprogs xfsprogs \
        util-linux mount fdisk cryptsetup-bin passwd procps iproute2 curl python3 openssl prometheus \
        ansible-core ansible-lint python3-jsonschema strace pgbackrest \
        patroni etcd-server etcd-client

.PHONY: deps build unit e2e test demo demo-stop ha-demo ha-demo-stop bench clean

# No daemon the packages bring (prometheus, haproxy...) may start on the host: tests run them in
# testbeds. A policy-rc.d that says 101 stops invoke-rc.d for the length of the install.
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing: $$missing"; \
	  guard=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; guard=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; rc=$$?; \
	  [ -z "$$guard" ] || rm -f /usr/sbin/policy-rc.d; [ $$rc = 0 ] || exit $$rc; \
	fi

build: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHOSTD_FAULT_INJECTION=ON >/dev/null
	cmake --build $(BUILD)

# Unit tests (pure logic, the Manager with a fake machine, and root tests of the libraries
# against their own loop devices and temp dirs on this host).
unit: build
	@t0=$$(date +%s); cd $(BUILD) && ctest --output-on-failure; rc=$$?; echo "# unit tests took $$(( $$(date +%s) - t0 )) s"; exit $$rc

# End-to-end in a throwaway systemd machine (tests/testbed): every suite runs (a failure does
# not hide the others' results) and prints how long it took.
E2E_SUITES := run lifecycle isolation disks metrics routes ansible hostile settings backup restore repohost remote ha-hostd ha-create ha-escape ha-crash ha hibernate
e2e: build
	@fail=0; t0=$$(date +%s); echo "# testbed self-test: machines on a network of their own"; \
	  tests/testbed/selftest-net || { fail=1; echo "# testbed self-test FAILED"; }; \
	  echo "# testbed self-test took $$(( $$(date +%s) - t0 )) s"; \
	for s in $(E2E_SUITES); do \
	  t0=$$(date +%s); echo "# e2e suite $$s"; \
	  BUILD=$(abspath $(BUILD)) tests/e2e/$$s || { fail=1; echo "# e2e suite $$s FAILED"; }; \
	  echo "# e2e suite $$s took $$(( $$(date +%s) - t0 )) s"; \
	done; exit $$fail

test: unit e2e

# Boots a testbed, installs hostd, creates a tenant, prints its URL, runs psql through
# HAProxy, and leaves the machine up until `make demo-stop`.
demo: build
	BUILD=$(abspath $(BUILD)) tests/e2e/demo

demo-stop:
	tests/testbed/testbed down hostd-demo

# Three machines hostd-ha-1..3 (HA hosts on a network of their own), the tenant ha-demo with a
# synchronous replica, its URL usable from this host; they stay up until `make ha-demo-stop`.
ha-demo: build
	BUILD=$(abspath $(BUILD)) tests/e2e/ha-demo

ha-demo-stop:
	for m in hostd-ha-1 hostd-ha-2 hostd-ha-3; do tests/testbed/testbed down $$m; done

bench: build
	BUILD=$(abspath $(BUILD)) bench/run

clean:
	rm -rf $(BUILD)
