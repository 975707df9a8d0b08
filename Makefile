# Two entry points: `make demo` (the main job) and `make test` (the checks CI runs).
# Both create .venv on first use; later runs reuse it.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test browser sshd lint docs bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/netgear demo $(ARGS)

test: $(STAMP) browser sshd
	$(BIN)/ruff check netgear tests benchmarks
	$(BIN)/python -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -q -d /tmp/netgear-site

# tests/test_browser.py drives Debian's chromium through chromium-driver (nothing may
# download a browser). Installed once with apt-get when missing; where that cannot work
# (no root/sudo, no apt) the browser test is skipped and says why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "installing chromium + chromium-driver (apt-get) for the browser test"; \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	  } >/tmp/netgear-apt.log 2>&1 || { tail -n 5 /tmp/netgear-apt.log; \
	    echo "could not install chromium: the browser test will be skipped"; }; }

# tests/test_ssh_tunnel.py starts its own sshd on 127.0.0.1 (never the system service).
# Installed once like chromium above; where that cannot work those tests are skipped. The
# package would start a system sshd on port 22 where systemd runs: that one is switched off.
sshd:
	@test -x /usr/sbin/sshd && command -v ssh-keygen >/dev/null || { \
	  echo "installing openssh-server (apt-get) for the ssh tunnel tests"; \
	  { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends openssh-server openssh-client && \
	    { $(SUDO) systemctl disable --now ssh.service || true; }; \
	  } >/tmp/netgear-apt-ssh.log 2>&1 || { tail -n 5 /tmp/netgear-apt-ssh.log; \
	    echo "could not install openssh-server: the ssh tunnel tests will be skipped"; }; }

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(ARGS)

clean:
	rm -rf $(VENV) site .pytest_cache .ruff_cache
