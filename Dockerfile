FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY application application
COPY infrastructure infrastructure
COPY interfaces interfaces
COPY sandboxes sandboxes
# With no configuration `invsync run` is the demo, whose sandbox stores need the `sandbox` extra.
RUN pip install --no-cache-dir '.[sandbox]'
USER nobody
EXPOSE 8000
CMD ["invsync", "run"]
