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
# The API and webhooks; `invsync worker` and `invsync project` serve /metrics on 9101 and 9102.
EXPOSE 8000 9101 9102
CMD ["invsync", "run"]
