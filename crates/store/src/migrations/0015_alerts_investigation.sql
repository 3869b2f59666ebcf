-- The alerts of an investigation: several alerts of one device join its queued investigation,
-- and the investigator reads them and lets each follow the investigation's state.
CREATE INDEX alerts_investigation ON alerts (tenant_id, investigation_id, seq);
