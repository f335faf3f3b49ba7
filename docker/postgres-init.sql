-- A second database on the same PostgreSQL server, for the labelling app's answers (FERV_ANNOTATE_DB).
CREATE DATABASE annotation OWNER ferv;
