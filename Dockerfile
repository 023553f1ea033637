# AssocLens dashboard. Same install steps as the README's first command.
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
ENV ASSOCLENS_DB=/data/results.duckdb
VOLUME ["/data"]
EXPOSE 8501
CMD [".venv/bin/streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=8501"]
