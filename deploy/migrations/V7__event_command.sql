-- Each event stores the name of the command that appended it, and its hash covers it (the
-- canonical form's `command` member, absent when the column is NULL: rows written before this
-- migration keep their hash). The command ledger's rows can then be checked against the
-- events they name, offline too. See ARCHITECTURE.md ("Hash chain").
ALTER TABLE events ADD COLUMN command text;
