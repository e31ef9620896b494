-- Bitrix24 status of our leads for the conversion KPI, PostgreSQL flavour. Keep in step with
-- ../sqlite/0002_crm.sql: same tables, columns and meaning.

-- One row per CRM object (a lead, or the deal it became) that belongs to one of our leads.
CREATE TABLE crm_status (
    entity      TEXT NOT NULL CHECK (entity IN ('lead', 'deal')),
    crm_id      BIGINT NOT NULL,                                  -- Bitrix24 ID
    lead_id     BIGINT REFERENCES leads (id) ON DELETE SET NULL,  -- our lead
    client_id   BIGINT REFERENCES clients (id) ON DELETE SET NULL,
    crm_lead_id BIGINT,                                           -- a deal's LEAD_ID
    status_id   TEXT NOT NULL,                                    -- STATUS_ID / STAGE_ID
    semantic    TEXT NOT NULL CHECK (semantic IN ('in_work', 'converted', 'junk')),
    modified_at TIMESTAMPTZ,                                      -- the portal's DATE_MODIFY
    changed_at  TIMESTAMPTZ NOT NULL,                             -- when it got this status
    seen_at     TIMESTAMPTZ NOT NULL,                             -- when we last read it
    PRIMARY KEY (entity, crm_id)
);
CREATE INDEX crm_status_lead ON crm_status (lead_id);

-- Where the last complete reconciliation stopped, per entity: the latest DATE_MODIFY it saw.
CREATE TABLE crm_cursors (
    entity      TEXT PRIMARY KEY CHECK (entity IN ('lead', 'deal')),
    modified_at TIMESTAMPTZ,
    run_at      TIMESTAMPTZ NOT NULL
);
