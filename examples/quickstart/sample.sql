-- The quickstart's sample database: a tiny shop.
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER NOT NULL REFERENCES customers (id),
  total_cents INTEGER NOT NULL CHECK (total_cents >= 0),
  placed_at TEXT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
INSERT INTO customers (id, name, email, created_at)
SELECT i, 'customer ' || i, 'c' || i || '@example.com', datetime('2026-01-01', '+' || i || ' hours') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO orders (id, customer_id, total_cents, placed_at)
SELECT i, 1 + (i * 37) % 200, (i * 7919) % 50000, datetime('2026-02-01', '+' || i || ' minutes') FROM n;
