-- The tracker store and the clinic's database live apart: different owners of their schemas, separate backups.
CREATE DATABASE tracker OWNER clinic;
CREATE DATABASE clinic OWNER clinic;
