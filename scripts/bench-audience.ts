// The audience the benchmarks send to: 100 mid-market accounts and `leads` leads spread over them, each
// a champion or an economic buyer in awareness (what the sample funnel's awareness sequences take).
import type postgres from 'postgres';

export async function seedAudience(pg: postgres.Sql, leads: number): Promise<void> {
  await pg`insert into accounts (key, name, tier) select 'acct' || g || '.test', 'Account ' || g, 'mid-market' from generate_series(1, 100) g`;
  await pg`
    insert into leads (account_id, email, first_name, persona, stage)
    select a.id, 'lead' || g || '@bench.test', 'Lead' || g, case when g % 2 = 0 then 'champion' else 'economic_buyer' end, 'awareness'
    from generate_series(1, ${leads}) g
    join (select id, row_number() over (order by key) - 1 as n from accounts) a on a.n = g % 100`;
  await pg`analyze accounts, leads`;
}
