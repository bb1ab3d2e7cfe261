-- History requests by topic list (status-go's MessagesRequestPayload with Topics, from
-- bc2d0184): one index range per requested topic, in archive order, merged by the query.
CREATE INDEX envelopes_topic_created_hash ON envelopes (topic, created, hash);
