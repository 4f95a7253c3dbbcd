CREATE TABLE "fanouts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"sequence_id" text NOT NULL,
	"sequence_version" text NOT NULL,
	"audience" jsonb NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"after_lead_id" uuid,
	"total" integer DEFAULT 0 NOT NULL,
	"scanned" integer DEFAULT 0 NOT NULL,
	"enrolled" integer DEFAULT 0 NOT NULL,
	"pages" integer DEFAULT 0 NOT NULL,
	"source" text NOT NULL,
	"error" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "fanouts_running_idx" ON "fanouts" USING btree ("started_at") WHERE status = 'running';