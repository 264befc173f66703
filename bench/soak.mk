# soak.mk -- `make soak`: 10 minutes of mixed load through restarts, a
# database outage and a SIGSTOP of PostgreSQL (bench/soak.py says what is
# measured). Not part of `make bench` or CI.
#
#   make soak                     600 s
#   make soak SOAK_SECONDS=120    shorter
SOAK_SECONDS ?= 600

.PHONY: soak
soak: $(BIN)
	$(Q)SOAK_SECONDS=$(SOAK_SECONDS) ARBITER_BIN=$(abspath $(BIN)) \
	    /usr/bin/python3 bench/soak.py
