-- Second chance: a winning may carry ordered runner-up bids; when the winner's window closes
-- unpaid (or the third attempt fails) and the tenant turned it on, the lot is offered to the
-- next runner-up as a winning of its own, with a fresh window.

ALTER TABLE tenants ADD COLUMN second_chance boolean NOT NULL DEFAULT false;

-- The first winning of a lot, shared by every offer made of it; one live offer per lot.
ALTER TABLE winning_bids
    ADD COLUMN root_bid_id uuid REFERENCES winning_bids (id) ON DELETE CASCADE,
    ADD COLUMN runner_up_position integer;
UPDATE winning_bids SET root_bid_id = id;
ALTER TABLE winning_bids ALTER COLUMN root_bid_id SET NOT NULL;
CREATE UNIQUE INDEX winning_bids_one_live_offer ON winning_bids (root_bid_id) WHERE status = 'awaiting_payment';

CREATE TABLE runner_up_bids (
    root_bid_id     uuid NOT NULL REFERENCES winning_bids (id) ON DELETE CASCADE,
    position        integer NOT NULL CONSTRAINT runner_up_bids_position_range CHECK (position BETWEEN 1 AND 10),
    buyer_email     text NOT NULL,
    amount          bigint NOT NULL CONSTRAINT runner_up_bids_amount_positive CHECK (amount > 0),
    -- The winning the offer made, once made.
    offered_bid_id  uuid REFERENCES winning_bids (id) ON DELETE SET NULL,
    PRIMARY KEY (root_bid_id, position)
);
