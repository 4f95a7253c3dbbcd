CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"action" text NOT NULL,
	"actor" text NOT NULL,
	"detail" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
ALTER TABLE "leads" ADD COLUMN "mail_preference" text DEFAULT 'all' NOT NULL;--> statement-breakpoint
ALTER TABLE "leads" ADD COLUMN "paused_until" timestamp with time zone;