-- One analysis view, every row, in a total order: the report must be byte-identical for the same
-- warehouse, and floating-point sums depend on the order rows arrive in, so the order is fixed here.
select *
from {{view}}
order by all;
