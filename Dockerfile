# Self-hosting image (a Space with `sdk: gradio` ignores this file). CPU-only torch, as on a CPU Space.
FROM python:3.11-slim
RUN useradd -m -u 1000 user
WORKDIR /home/user/app
COPY --chown=user pre-requirements.txt requirements.txt ./
RUN pip install --no-cache-dir -r pre-requirements.txt && pip install --no-cache-dir -r requirements.txt
COPY --chown=user . .
USER user
ENV GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 OMP_NUM_THREADS=2
EXPOSE 7860
CMD ["python", "app.py"]
