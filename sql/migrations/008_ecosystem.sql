-- 008_ecosystem.sql -- the OpenFeature tracking route finds the experiments
-- that exposed a unit by the unit alone (POST /ofrep/v1/track): an index on
-- exposure_units(unit), whose primary key leads with the experiment.
CREATE INDEX IF NOT EXISTS exposure_units_unit
    ON arbiter.exposure_units (unit);
