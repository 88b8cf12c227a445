-- The only query by model reads every row (the totals per model), which a scan does as well
-- without it, and keeping it cost every insert a second index entry and every update that sets
-- the model a delete and a re-insert of its entry.
DROP INDEX reservations_model;
