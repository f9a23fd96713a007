FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY application application
COPY infrastructure infrastructure
COPY interfaces interfaces
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8000
CMD ["invsync", "run"]
