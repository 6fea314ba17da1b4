-- Read receipts (storage.Desk.ReadReceipts): how far each conversation has
-- been read by staff (the furthest staff mark) and by its visitor. MarkRead
-- keeps them in the same statement that moves a mark, so reading them is one
-- primary-key lookup (a visitor's page asks at each connect) rather than a
-- scan of read_marks, whose only index leads with the user. Only read marks
-- write it: nothing on the message path.

-- +goose Up
CREATE TABLE read_receipts (
    conversation_id bigint PRIMARY KEY REFERENCES conversations (id),
    staff_seq       bigint NOT NULL DEFAULT 0 CHECK (staff_seq >= 0),
    visitor_seq     bigint NOT NULL DEFAULT 0 CHECK (visitor_seq >= 0)
) WITH (fillfactor = 70);

INSERT INTO read_receipts (conversation_id, staff_seq, visitor_seq)
SELECT m.conversation_id,
       COALESCE(MAX(m.seq) FILTER (WHERE u.is_admin), 0),
       COALESCE(MAX(m.seq) FILTER (WHERE m.user_id = c.user_id), 0)
FROM read_marks m
JOIN users u ON u.id = m.user_id
JOIN conversations c ON c.id = m.conversation_id
GROUP BY m.conversation_id;

-- +goose Down
DROP TABLE read_receipts;
