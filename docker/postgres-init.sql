-- One PostgreSQL server, one database per service (the default database is created by the image).
CREATE DATABASE mlflow;
CREATE DATABASE prefect;
