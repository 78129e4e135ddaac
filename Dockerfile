# The light runtime in a container: face-mask detection and the service, no PyTorch (about 0.5 GB image).
#   docker build -t visionlab-runtime .
#   docker run --rm -p 8000:8000 visionlab-runtime                      # http://localhost:8000
#   docker run --rm -p 8000:8000 -v $PWD/model.onnx:/model.onnx:ro visionlab-runtime /model.onnx   # your export
# The image holds the bundled classifier and YuNet (inside the package). The service has no authentication:
# publish the port only where that is acceptable. Set VISIONLAB_ALLOW_HOST to the name clients use.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VISIONLAB_CACHE=/tmp/visionlab-cache VISIONLAB_ALLOW_HOST=localhost
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && rm -rf /src && useradd --create-home --uid 10001 visionlab
USER visionlab
WORKDIR /home/visionlab
EXPOSE 8000
ENTRYPOINT ["sh", "-c", "exec visionlab serve --host 0.0.0.0 --port 8000 --allow-host \"$VISIONLAB_ALLOW_HOST\" \"$@\"", "visionlab"]
