-- The statistics read every row (grouped by model or day, and currency), which a scan does as
-- well without them, and keeping them cost every insert two index entries and every update that
-- sets those columns a delete and a re-insert of each.
DROP INDEX sales_model;
DROP INDEX sales_placed_day;
