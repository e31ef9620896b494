-- Where a lead's client came from: the deep-link payload of their first start (UTM_SOURCE).
ALTER TABLE leads ADD COLUMN came_from TEXT;
