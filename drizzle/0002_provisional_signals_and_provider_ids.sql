ALTER TABLE "messages" ADD COLUMN "provider_message_id" text;--> statement-breakpoint
ALTER TABLE "signals" ADD COLUMN "settled_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "signals" ADD COLUMN "settles_at" timestamp with time zone;--> statement-breakpoint
-- Signals recorded before this migration were already counted: they are settled.
UPDATE "signals" SET "settled_at" = "occurred_at";--> statement-breakpoint
CREATE INDEX "messages_provider_id_idx" ON "messages" USING btree ("provider_message_id") WHERE provider_message_id is not null;--> statement-breakpoint
CREATE INDEX "signals_provisional_idx" ON "signals" USING btree ("settles_at") WHERE settled_at is null;